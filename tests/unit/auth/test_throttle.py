"""The login throttle: only failed credentials count, per client address; past the limit every
attempt from that address is 429 with a Retry-After, while other addresses go on."""

from __future__ import annotations

import pytest

from app.auth.throttle import LoginThrottle
from app.spec.errors import RegistryError


def _fail(throttle: LoginThrottle, client: str) -> None:
    with pytest.raises(RegistryError, match="UNAUTHORIZED"), throttle.attempt(client):
        raise RegistryError("UNAUTHORIZED")


def test_past_the_limit_an_address_is_refused_with_retry_after():
    throttle = LoginThrottle("2/minute")
    _fail(throttle, "10.0.0.1")
    _fail(throttle, "10.0.0.1")
    with pytest.raises(RegistryError) as raised, throttle.attempt("10.0.0.1"):
        pytest.fail("a throttled attempt must not reach the credential check")
    assert raised.value.code == "TOOMANYREQUESTS" and raised.value.status == 429
    assert 1 <= int(raised.value.headers["Retry-After"]) <= 60
    with throttle.attempt("10.0.0.2"):
        pass


def test_good_credentials_and_other_errors_do_not_count():
    throttle = LoginThrottle("1/minute")
    for _ in range(3):
        with throttle.attempt("10.0.0.1"):
            pass
        with pytest.raises(RegistryError), throttle.attempt("10.0.0.1"):
            raise RegistryError("DENIED")
    with throttle.attempt("10.0.0.1"):
        pass


def test_a_limit_that_is_not_a_rate_stops_the_server_with_its_name():
    with pytest.raises(SystemExit, match="BERTH_LOGIN_FAILURE_LIMIT"):
        LoginThrottle("ten a minute")
