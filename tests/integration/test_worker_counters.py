"""`berth serve` with several workers and no Redis is still one rate-limit budget and one login
throttle per client address, as one process is (issue 20): the counters are in memory every
worker maps (app/counters/windows.py), with no other process. Each request goes on a new
connection, so the kernel spreads them over both workers (the X-Request-ID's first 20 hex digits
name the process that answered). A worker killed (kill -9) takes no count with it and blocks no
other; `berth serve` with no workers setting forks one worker per CPU."""

from __future__ import annotations

import os
import signal
import time

import requests

from tests.support.server import Server
from tests.support.waiting import until

OWNER = "berth_counters_owner_0123456789abcdef"


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def start(tmp_path, **env) -> Server:
    return Server(tmp_path / "data", token=OWNER, env={"BERTH_WORKERS": "2", **env}).start()


def get(server: Server, path: str = "/v2/", password: str = OWNER, client: str | None = None) -> requests.Response:
    """One request on a new connection."""
    headers = {"Connection": "close"}
    if client:
        headers["X-Forwarded-For"] = client
    return requests.get(server.url + path, auth=("admin", password), headers=headers, timeout=20)


def process_of(response: requests.Response) -> str:
    return response.headers["X-Request-ID"][:20]


def in_one_minute_window(needed: float) -> None:
    """Wait, if need be, until `needed` seconds fit before the next minute starts. The budgets
    are sliding window counters over windows aligned to the clock's minutes: past a boundary,
    the previous minute's counts weigh only by what is left of it, so a test that counts exact
    429s across one saw a budget larger by one (CI, once)."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


def test_the_rate_limit_is_one_budget_across_the_workers(tmp_path):
    server = start(tmp_path, BERTH_RATE_LIMIT="30/minute")
    try:
        in_one_minute_window(10)
        responses = [get(server) for _ in range(40)]
        assert len({process_of(r) for r in responses}) == 2  # both workers answered
        assert [r.status_code for r in responses] == [200] * 30 + [429] * 10
        assert [int(r.headers["RateLimit-Remaining"]) for r in responses[:30]] == list(range(29, -1, -1))
        assert all(r.headers["RateLimit-Limit"] == "30" for r in responses)
        assert responses[-1].json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    finally:
        server.stop()


def test_the_login_throttle_is_one_budget_across_the_workers(tmp_path):
    server = start(tmp_path, BERTH_LOGIN_FAILURE_LIMIT="3/minute")
    try:
        in_one_minute_window(10)
        guesses = [get(server, password="berth_guess") for _ in range(12)]
        assert len({process_of(r) for r in guesses}) == 2
        assert [r.status_code for r in guesses] == [401] * 3 + [429] * 9
        good = [get(server) for _ in range(6)]  # a good credential from that address too, on either worker
        assert [r.status_code for r in good] == [429] * 6
        assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in good)
    finally:
        server.stop()


def test_a_worker_killed_mid_load_takes_no_count_with_it_and_blocks_no_other(tmp_path):
    # Budgets per client address (X-Forwarded-For from the trusted test client); the test's own
    # requests without one are never limited.
    server = start(
        tmp_path,
        BERTH_RATE_LIMIT="20/minute",
        BERTH_TRUSTED_PROXIES="127.0.0.1/32",
        BERTH_RATE_LIMIT_ALLOW="127.0.0.1/32",
    )
    try:
        in_one_minute_window(35)  # the kill, the wait for the successor (at most 10 + 15 s), the requests
        first = [get(server, client="203.0.113.1") for _ in range(12)]
        assert [r.status_code for r in first] == [200] * 12
        victim = children(server.process.pid)[0]
        os.kill(victim, signal.SIGKILL)  # whatever it held, the lock included, is let go
        # (Connections the kernel queued on its socket until it was gone are reset, as documented.)
        until(lambda: victim not in children(server.process.pid), seconds=10, what="the worker is gone")
        rest = [get(server, client="203.0.113.1") for _ in range(10)]  # the other worker, or its successor
        assert [r.status_code for r in rest] == [200] * 8 + [429] * 2  # the 12 counted before still count
        assert [int(r.headers["RateLimit-Remaining"]) for r in rest[:8]] == list(range(7, -1, -1))
        until(lambda: len(children(server.process.pid)) == 2, seconds=15, what="the supervisor starts another")
        assert [get(server, client="203.0.113.2").status_code for _ in range(22)] == [200] * 20 + [429] * 2
        assert "Traceback" not in server.logs()
    finally:
        server.stop()


def test_with_no_workers_setting_berth_serve_forks_one_worker_per_cpu(tmp_path):
    from app.config import available_cpus

    server = Server(tmp_path / "data", token=OWNER, env={"BERTH_WORKERS": None}).start()
    try:
        cpus = available_cpus()
        if cpus == 1:  # the single-process server, as before
            assert children(server.process.pid) == []
        else:
            assert len(children(server.process.pid)) == cpus
            assert f"({cpus} worker processes)" in server.logs()
        assert "count rate limits and login failures each on their own" not in server.logs()
    finally:
        server.stop()
