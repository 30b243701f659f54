"""The signing-key cache against a real JWKS endpoint on loopback (tests/support/idp.py), which
hangs when told to: cached keys never wait on a fetch, and fetches are limited whether or not
they succeed."""

from __future__ import annotations

import threading
import time

import pytest

from app.auth.jwks import KeysUnavailable, SigningKeys, UnknownKey
from tests.support.clock import FakeClock
from tests.support.idp import IdentityProvider


@pytest.fixture
def provider():
    idp = IdentityProvider()
    yield idp
    idp.stop()


def _wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_cached_key_is_used_at_once_while_its_refresh_hangs(provider):
    clock = FakeClock()
    keys = SigningKeys(provider.jwks_url, timeout=30, cooldown=0, lifespan=300, clock=clock)
    assert keys.get("rsa-1").key_id == "rsa-1"
    provider.hang = True
    clock.advance(299)
    assert keys.get("rsa-1").key_id == "rsa-1"
    assert provider.fetches == 1 and not keys.fetching  # within their lifespan: no refresh
    clock.advance(2)  # the cached keys are past their lifespan now
    assert keys.get("rsa-1").key_id == "rsa-1"  # and a refresh starts behind this answer
    _wait_for(lambda: provider.fetches == 2)
    assert keys.get("ec-1").key_id == "ec-1"
    assert keys.fetching  # every answer came while the refresh hung
    assert provider.fetches == 2


def test_a_fetch_that_never_answers_still_starts_the_cool_down(provider):
    provider.hang = True
    keys = SigningKeys(provider.jwks_url, timeout=0.5, cooldown=60)
    for kid in ("made-up-1", "made-up-2", "rsa-1"):
        with pytest.raises(KeysUnavailable):
            keys.get(kid)
    assert provider.fetches == 1


def test_a_request_waits_on_another_requests_fetch_only_briefly(provider):
    keys = SigningKeys(provider.jwks_url, timeout=30, cooldown=60)
    provider.hang = True
    found = []
    starter = threading.Thread(target=lambda: found.append(keys.get("rsa-1")))
    starter.start()
    _wait_for(lambda: provider.fetches == 1)
    with pytest.raises(KeysUnavailable):
        keys.get("ec-1")  # gives up while the request that started the fetch still waits for it
    assert starter.is_alive()
    provider.hang = False
    starter.join(30)
    assert [key.key_id for key in found] == ["rsa-1"]  # the one that started it waits for its answer
    assert keys.get("ec-1").key_id == "ec-1"


def test_an_unknown_kid_is_fetched_for_once_per_cool_down(provider):
    keys = SigningKeys(provider.jwks_url, timeout=5, cooldown=60)
    keys.get("rsa-1")
    for _ in range(10):
        with pytest.raises(UnknownKey):
            keys.get("made-up")
    assert provider.fetches == 1


def test_an_unknown_kid_is_fetched_for_again_once_the_cool_down_has_passed(provider):
    clock = FakeClock()
    keys = SigningKeys(provider.jwks_url, timeout=5, cooldown=10, clock=clock)
    keys.get("rsa-1")
    provider.add_key("ec-2")  # the provider rotates its keys
    clock.advance(9.9)
    with pytest.raises(UnknownKey):
        keys.get("ec-2")
    assert provider.fetches == 1
    clock.advance(0.2)
    assert keys.get("ec-2").key_id == "ec-2"
    assert provider.fetches == 2


def test_a_key_the_provider_drops_stops_working_after_the_next_fetch(provider):
    keys = SigningKeys(provider.jwks_url, timeout=5, cooldown=0, lifespan=0)
    keys.get("ec-1")
    del provider.keys["ec-1"]
    keys.get("rsa-1")  # past the lifespan: fetched again in the background
    _wait_for(lambda: provider.fetches == 2 and not keys.fetching)
    with pytest.raises(UnknownKey):
        keys.get("ec-1")
