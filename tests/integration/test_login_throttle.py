"""Failed logins are limited per client address: past the limit even a good credential from
that address gets 429 with Retry-After, until the window moves on."""

from __future__ import annotations

import requests

from tests.support.server import Server
from tests.support.waiting import until


def test_failed_logins_are_throttled_per_address(tmp_path):
    server = Server(
        tmp_path / "data", token="berth_throttle_owner_0123456789", env={"BERTH_LOGIN_FAILURE_LIMIT": "5 per 2 seconds"}
    ).start()
    try:
        # Anonymous requests and good credentials do not count.
        for _ in range(10):
            assert requests.get(f"{server.url}/v2/", timeout=10).status_code == 401
            assert requests.get(f"{server.url}/v2/", auth=("a", server.token), timeout=10).status_code == 200
        for _ in range(5):
            assert requests.get(f"{server.url}/v2/", auth=("a", "berth_guess"), timeout=10).status_code == 401
        for url, kw in (
            (f"{server.url}/v2/", {"auth": ("a", server.token)}),
            (f"{server.url}/auth/token", {"auth": ("a", server.token)}),
            (f"{server.url}/api/v1/orgs/default/registries", {"headers": {"Authorization": f"Bearer {server.token}"}}),
        ):
            r = requests.get(url, timeout=10, **kw)
            assert r.status_code == 429, url
            assert 1 <= int(r.headers["Retry-After"]) <= 2
        assert (
            requests.get(f"{server.url}/v2/", auth=("a", server.token), timeout=10).json()["errors"][0]["code"]
            == "TOOMANYREQUESTS"
        )
        # The window moves on (a 429 is not a failure of its own: asking again does not extend it).
        until(
            lambda: requests.get(f"{server.url}/v2/", auth=("a", server.token), timeout=10).status_code == 200,
            seconds=4,
            what="the window moves on",
        )
        # The OAuth2 form counts too. Each failure is refused 401 once the window has room for it
        # (the five above leave it within moments of each other).
        for _ in range(5):
            until(
                lambda: (
                    requests.post(
                        f"{server.url}/auth/token",
                        data={
                            "grant_type": "password",
                            "username": "a",
                            "password": "berth_guess",
                            "service": server.host,
                        },
                        timeout=10,
                    ).status_code
                    == 401
                ),
                seconds=4,
                what="a failed form login is refused 401",
            )
        assert (
            requests.post(
                f"{server.url}/auth/token",
                data={"grant_type": "password", "username": "a", "password": server.token, "service": server.host},
                timeout=10,
            ).status_code
            == 429
        )
    finally:
        server.stop()
