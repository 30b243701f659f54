"""Registry tokens: a verified token's claims are reused without checking its signature again,
but never past its expiry, never once its signing key left the ring, and never for another
audience or a token that differs by a byte."""

from __future__ import annotations

import datetime as dt
import os

from app.auth import registry_tokens
from app.auth.keys import KeyRing
from app.auth.registry_tokens import LEEWAY, RegistryTokens
from tests.support.clock import FakeClock

SERVICE = "registry.example:5000"
ACCESS = [{"type": "repository", "name": "default/app", "actions": ["pull"]}]


def test_a_cached_token_expires_on_time(tmp_path):
    clock = FakeClock()
    tokens = RegistryTokens(KeyRing(tmp_path).load(), clock)
    token, lifetime = tokens.issue("admin", SERVICE, ACCESS, (1, "fp"))
    assert tokens.verify(token, SERVICE)["sub"] == "admin"
    assert (token, SERVICE) in tokens._verified
    clock.advance(lifetime + LEEWAY - 2)
    assert tokens.verify(token, SERVICE) is not None  # within the leeway, as pyjwt allows
    clock.advance(4)
    assert tokens.verify(token, SERVICE) is None


def test_a_token_first_presented_after_its_expiry_is_refused(tmp_path):
    clock = FakeClock()
    tokens = RegistryTokens(KeyRing(tmp_path).load(), clock)
    late, lifetime = tokens.issue("admin", SERVICE, ACCESS, (1, "fp"))
    refresh = tokens.issue_refresh("admin", SERVICE, (1, "fp"))
    clock.advance(lifetime + LEEWAY - 1)
    assert tokens.verify(late, SERVICE) is not None  # within the leeway
    tokens._verified.clear()  # not seen before: its signature and claims are checked afresh
    clock.advance(1)
    assert tokens.verify(late, SERVICE) is None
    assert tokens.verify_refresh(refresh, SERVICE) is not None  # lives 30 days
    clock.advance(registry_tokens.REFRESH_LIFETIME)
    assert tokens.verify_refresh(refresh, SERVICE) is None


def test_a_token_issued_ahead_of_the_clock_is_refused_until_its_time(tmp_path):
    clock = FakeClock()
    ahead = RegistryTokens(KeyRing(tmp_path).load(), clock)
    token, _ = ahead.issue("admin", SERVICE, ACCESS, (1, "fp"))
    behind = FakeClock(clock.now() - dt.timedelta(seconds=LEEWAY + 2))  # a replica whose clock is slow
    verifier = RegistryTokens(KeyRing(tmp_path).load(), behind)
    assert verifier.verify(token, SERVICE) is None  # its iat is past this clock's time plus the leeway
    behind.advance(2)
    assert verifier.verify(token, SERVICE) is not None


def test_a_cached_token_dies_with_its_key(tmp_path):
    ring = KeyRing(tmp_path).load()
    tokens = RegistryTokens(ring)
    token, _ = tokens.issue("admin", SERVICE, ACCESS, (1, "fp"))
    assert tokens.verify(token, SERVICE) is not None
    ring.rotate()
    assert tokens.verify(token, SERVICE) is not None  # older keys keep verifying after a rotation
    ring.prune()
    assert tokens.verify(token, SERVICE) is None


def test_the_cache_is_per_token_and_audience(tmp_path):
    tokens = RegistryTokens(KeyRing(tmp_path).load())
    token, _ = tokens.issue("admin", SERVICE, ACCESS, (1, "fp"))
    assert tokens.verify(token, SERVICE) is not None
    assert tokens.verify(token, "other.example") is None
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")])
    assert tokens.verify(forged, SERVICE) is None
    other = RegistryTokens(KeyRing(tmp_path / "elsewhere").load())  # another deployment's key
    assert other.verify(token, SERVICE) is None


def test_the_cache_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(registry_tokens, "VERIFIED_CACHE", 8)
    tokens = RegistryTokens(KeyRing(tmp_path).load())
    for _ in range(20):
        token, _ = tokens.issue(os.urandom(4).hex(), SERVICE, ACCESS, (1, "fp"))
        assert tokens.verify(token, SERVICE) is not None
    assert len(tokens._verified) == 8
