"""`berth serve` with several workers and no Redis is still one rate-limit budget and one login
throttle per client address, as one process is (issue 20): the supervisor's counter service
holds the counts for every worker. Each request goes on a new connection, so the kernel spreads
them over both workers (the X-Request-ID's first 20 hex digits name the process that answered).
While the counter service is stopped or gone, every request is still answered (counted per
worker meanwhile), and the workers share again once it answers; `berth serve` with no workers
setting forks one worker per CPU."""

from __future__ import annotations

import os
import signal
import time

import requests

from tests.support.server import Server
from tests.support.waiting import until

OWNER = "berth_counters_owner_0123456789abcdef"
LOST = "the counter service cannot be reached"
BACK = "the counter service answers again"


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def counter_services(server: Server) -> list[int]:
    """The supervisor's children named berth-counters (app/server/workers.py)."""
    named = []
    for pid in children(server.process.pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "berth-counters":
                    named.append(pid)
        except FileNotFoundError:  # gone meanwhile
            pass
    return named


def counter_service(server: Server) -> int:
    named = counter_services(server)
    assert len(named) == 1, named
    return named[0]


def workers(server: Server) -> list[int]:
    service = counter_service(server)
    return [pid for pid in children(server.process.pid) if pid != service]


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


def test_the_rate_limit_is_one_budget_across_the_workers(tmp_path):
    server = start(tmp_path, BERTH_RATE_LIMIT="30/minute")
    try:
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
        guesses = [get(server, password="berth_guess") for _ in range(12)]
        assert len({process_of(r) for r in guesses}) == 2
        assert [r.status_code for r in guesses] == [401] * 3 + [429] * 9
        good = [get(server) for _ in range(6)]  # a good credential from that address too, on either worker
        assert [r.status_code for r in good] == [429] * 6
        assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in good)
    finally:
        server.stop()


def _answered(server: Server, client: str, count: int) -> list[int]:
    """`count` requests from `client`; none may take long (a stopped service costs one request
    one short timeout, not a hang) or be a server error."""
    codes = []
    for _ in range(count):
        began = time.monotonic()
        r = get(server, client=client)
        assert time.monotonic() - began < 2, "a request waited on the counter service"
        assert r.status_code < 500, r.text
        codes.append(r.status_code)
    return codes


def _shared_again(server: Server) -> None:
    """Every worker that lost the counter service has logged that it answers again (each tries
    again within 5 s; one that never noticed the loss reconnects on its next call)."""
    until(
        lambda: get(server).status_code == 200 and server.logs().count(BACK) == server.logs().count(LOST),
        seconds=20,
        what="the workers use the counter service again",
    )


def test_requests_are_answered_while_the_counter_service_is_stopped_or_gone_and_shared_again_after(tmp_path):
    # Budgets per client address (X-Forwarded-For from the trusted test client); the test's own
    # requests without one are never limited.
    server = start(
        tmp_path,
        BERTH_RATE_LIMIT="20/minute",
        BERTH_TRUSTED_PROXIES="127.0.0.1/32",
        BERTH_RATE_LIMIT_ALLOW="127.0.0.1/32",
    )
    try:
        assert sorted(_answered(server, "203.0.113.1", 24)) == [200] * 20 + [429] * 4
        service = counter_service(server)

        os.kill(service, signal.SIGSTOP)  # it answers nothing, and does not die
        try:
            # Each worker counts on its own: 20 each, so 24 requests spread over both all pass.
            assert _answered(server, "203.0.113.2", 24) == [200] * 24
            assert server.logs().count(LOST) == 2, server.logs()[-3000:]  # once per worker, not per request
        finally:
            os.kill(service, signal.SIGCONT)
        _shared_again(server)
        assert sorted(_answered(server, "203.0.113.3", 24)) == [200] * 20 + [429] * 4

        os.kill(service, signal.SIGKILL)
        assert all(code < 500 for code in _answered(server, "203.0.113.4", 10))
        until(
            lambda: len(counter_services(server)) == 1 and counter_service(server) != service,
            seconds=10,
            what="the supervisor starts another",
        )
        _shared_again(server)
        assert sorted(_answered(server, "203.0.113.5", 24)) == [200] * 20 + [429] * 4
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
            assert len(workers(server)) == cpus
            assert f"({cpus} worker processes)" in server.logs()
        assert "count rate limits and login failures each on their own" not in server.logs()
    finally:
        server.stop()


def _listening_path(pid: int) -> str:
    """The path of the Unix socket `pid` listens on (from /proc/net/unix and its fds)."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")}
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) == 8 and fields[6] in inodes and "berth-counters-" in fields[7]:
                return fields[7]
    raise AssertionError(f"process {pid} listens on no berth-counters socket")


def test_the_counter_services_directory_is_private_and_removed_even_after_a_kill_of_the_supervisor(tmp_path):
    for kill in (False, True):
        (tmp_path / str(kill)).mkdir()
        server = start(tmp_path / str(kill))
        service = counter_service(server)
        directory = os.path.dirname(_listening_path(service))
        assert oct(os.stat(directory).st_mode & 0o777) == "0o700"
        server.kill() if kill else server.stop()
        until(lambda: not os.path.exists(f"/proc/{service}"), seconds=10, what="the counter service ends")
        assert not os.path.exists(directory), (kill, os.listdir(directory))
