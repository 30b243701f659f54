"""Redis goes away under two running replicas and comes back: every request is still answered
(never a 5xx), rate limits and the login throttle hold per process meanwhile, the outage is
logged once and counted in a metric, and the replicas share one budget again once Redis is back."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.support.redis_server import RedisServer
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

OWNER = "berth_redis_owner_0123456789abcdef"
LOST = "Redis cannot be reached"
BACK = "Redis answers again"


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def replica(tmp_path, name: str, redis_url: str, metrics: bool = False) -> Server:
    # Budgets per client address; the test's own set-up requests (no X-Forwarded-For) are exempt.
    env = {
        "BERTH_REDIS_URL": redis_url,
        "BERTH_RATE_LIMIT": "5/minute",
        "BERTH_LOGIN_FAILURE_LIMIT": "3/minute",
        "BERTH_TRUSTED_PROXIES": "127.0.0.1/32",
        "BERTH_RATE_LIMIT_ALLOW": "127.0.0.1/32",
    }
    return Server(tmp_path / name, token=OWNER, env=env, metrics=metrics).start()


def get(server: Server, path: str, client: str, password: str = OWNER) -> requests.Response:
    headers = {"X-Forwarded-For": client}
    if path.startswith("/api/"):
        return requests.get(server.url + path, timeout=20, headers={**headers, "Authorization": f"Bearer {password}"})
    return requests.get(server.url + path, timeout=20, headers=headers, auth=("a", password))


def statuses(responses) -> list[int]:
    return sorted(r.status_code for r in responses)


def fallbacks(server: Server) -> float:
    text = requests.get(server.metrics_url, timeout=20).text
    match = re.search(r'^berth_dependency_fallback_total\{dependency="redis"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_replicas_count_per_process_while_redis_is_down_and_share_again_when_it_returns(tmp_path, redis_server):
    a = replica(tmp_path, "a", redis_server.url, metrics=True)
    b = replica(tmp_path, "b", redis_server.url)
    try:
        for server in (a, b):
            RegistryClient(server.url, server.session()).push_image("default/app", "v1")
        # Shared: six requests from one address, spread over both replicas, fit a budget of 5 once.
        shared = [get(a if i % 2 else b, "/v2/", "203.0.113.10") for i in range(6)]
        assert statuses(shared) == [200] * 5 + [429]
        assert fallbacks(a) == 0

        redis_server.stop()
        answered = []
        # Each replica now holds the budget on its own: 5 on a, and 5 more on b.
        on_a = [get(a, "/v2/", "203.0.113.20") for _ in range(6)]
        on_b = [get(b, "/v2/", "203.0.113.20") for _ in range(5)]
        assert statuses(on_a) == [200] * 5 + [429] and statuses(on_b) == [200] * 5
        for path in (
            "/v2/default/app/manifests/v1",
            "/v2/default/app/tags/list",
            "/api/v1/orgs/default/registries",
            "/auth/token",
        ):
            answered += [get(a, path, "203.0.113.21"), get(b, path, "203.0.113.21")]
        assert statuses(answered) == [200] * len(answered)
        # The login throttle still throttles, per process.
        guesses = [get(a, "/v2/", "203.0.113.30", password="berth_guess") for _ in range(3)]
        assert statuses(guesses) == [401] * 3
        assert get(a, "/v2/", "203.0.113.30").status_code == 429
        assert get(b, "/v2/", "203.0.113.30").status_code == 200
        # Logged once, not per request; counted.
        assert a.logs().count(LOST) == 1 and b.logs().count(LOST) == 1
        assert fallbacks(a) >= len(on_a)

        redis_server.start()  # empty: what was counted before the outage is gone
        deadline = time.monotonic() + 60
        for n in range(1000):
            if BACK in a.logs() and BACK in b.logs():
                break
            assert time.monotonic() < deadline, "the replicas did not go back to Redis"
            assert get(a, "/v2/", f"198.51.100.{n % 250}").status_code < 500
            assert get(b, "/v2/", f"198.51.100.{n % 250}").status_code < 500
            time.sleep(0.2)
        shared = [get(a if i % 2 else b, "/v2/", "203.0.113.40") for i in range(6)]
        assert statuses(shared) == [200] * 5 + [429]
    finally:
        a.stop()
        b.stop()
