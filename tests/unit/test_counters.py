"""Rate-limit and login-failure counters on the real Redis at 127.0.0.1:6379: replicas (two
Counters on one URL) share one budget; with Redis unreachable each counts in its own memory,
every call is still answered, the fallback is counted and logged once. The same for the counter
service of `berth serve --workers` (a real forked process on a real socket), and a service that
never answers costs one short timeout, not a hang."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import stat
import time

import limits
import pytest
from limits.errors import StorageError
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from app.counters import MEMORY, Counters, rate_limit_and_login_test, service

REDIS_URL = "redis://127.0.0.1:6379/13"
# Nothing listens on port 1: the connection is refused at once.
UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_url():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return REDIS_URL


def _key() -> str:
    return "unit-" + secrets.token_hex(6)


def test_replicas_on_one_redis_share_a_budget(redis_url):
    item, key = limits.parse("3/minute"), _key()
    a = Counters(redis_url).limiter(MovingWindowRateLimiter)
    b = Counters(redis_url).limiter(MovingWindowRateLimiter)
    assert [a.hit(item, "t", key), b.hit(item, "t", key), a.hit(item, "t", key)] == [True, True, True]
    assert not b.hit(item, "t", key) and not a.test(item, "t", key)
    assert b.get_window_stats(item, "t", key).remaining == 0


def test_in_memory_counters_are_per_process():
    item, key = limits.parse("1/minute"), _key()
    a, b = Counters(MEMORY).limiter(FixedWindowRateLimiter), Counters(MEMORY).limiter(FixedWindowRateLimiter)
    assert a.hit(item, key) and not a.hit(item, key)
    assert b.hit(item, key)


def test_without_redis_every_call_is_answered_in_memory_and_counted(caplog):
    counters = Counters(UNREACHABLE)
    fallbacks = []
    counters.on_fallback = lambda: fallbacks.append(1)
    limiter = counters.limiter(FixedWindowRateLimiter)
    item, key = limits.parse("2/minute"), _key()
    with caplog.at_level(logging.WARNING, logger="berth.counters"):
        results = [limiter.hit(item, key) for _ in range(3)]
    assert results == [True, True, False]  # the budget still holds, per process
    assert len(fallbacks) == 3
    lost = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(lost) == 1  # one warning, not one per request


@pytest.fixture
def counter_service():
    """The counter service as `berth serve --workers` runs it: a forked process on a socket in
    a private directory (app/counters/service.py)."""
    listening = service.ServiceSocket()
    pid = os.fork()
    if pid == 0:
        try:
            service.serve(listening.socket, listening.address.key)
        finally:
            os._exit(1)
    yield listening.address
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    listening.close()


def test_workers_on_one_counter_service_share_a_budget_and_one_call_gives_the_stats(counter_service):
    item, key = limits.parse("3/minute"), _key()
    a = Counters(MEMORY, counter_service).limiter(MovingWindowRateLimiter)
    b = Counters(MEMORY, counter_service).limiter(MovingWindowRateLimiter)
    assert [a.hit(item, "t", key), b.hit(item, "t", key)] == [True, True]
    allowed, stats = a.hit_with_stats(item, "t", key)
    assert allowed and stats.remaining == 0 and stats.reset_time > time.time()
    assert not b.hit(item, "t", key) and not a.test(item, "t", key)
    assert b.test_with_stats(item, "t", key)[0] is False
    assert b.get_window_stats(item, "t", key).remaining == 0


def test_the_counter_service_keeps_its_directory_private_and_refuses_a_peer_without_the_key(counter_service):
    assert stat.S_IMODE(os.stat(os.path.dirname(counter_service.path)).st_mode) == 0o700
    stranger = service.ServiceClient(service.ServiceAddress(counter_service.path, b"not the key"))
    item = limits.parse("3/minute")
    with pytest.raises(StorageError):
        service.RemoteStrategy(stranger, FixedWindowRateLimiter).hit(item, _key())


def test_a_counter_service_that_never_answers_costs_one_short_timeout_then_counts_locally(tmp_path, caplog):
    # Listening, so connecting succeeds, but never accepting: no challenge, no answer.
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    silent.bind(str(tmp_path / "socket"))
    silent.listen(8)
    counters = Counters(MEMORY, service.ServiceAddress(str(tmp_path / "socket"), b"k" * 32))
    fallbacks = []
    counters.on_fallback = lambda: fallbacks.append(1)
    limiter = counters.limiter(FixedWindowRateLimiter)
    item, key = limits.parse("2/minute"), _key()
    with caplog.at_level(logging.WARNING, logger="berth.counters"):
        began = time.monotonic()
        first = limiter.hit(item, key)
        waited = time.monotonic() - began
        began = time.monotonic()
        rest = [limiter.hit(item, key) for _ in range(2)]
        later = time.monotonic() - began
    assert [first, *rest] == [True, True, False]  # the budget holds, in this process
    assert service.TIMEOUT_SECONDS <= waited < service.TIMEOUT_SECONDS + 0.5
    assert later < 0.05  # not asked again until the retry interval has passed
    assert len(fallbacks) == 3
    assert [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()] == [
        "the counter service cannot be reached (TimeoutError: timed out): rate limits and login failures "
        "are counted per process until it answers again"
    ]
    silent.close()


@pytest.mark.parametrize("shared", [True, False], ids=["counter service", "memory"])
def test_a_requests_rate_limit_and_login_test_are_one_round_trip(counter_service, shared):
    counters = Counters(MEMORY, counter_service if shared else None)
    rate, login = counters.limiter(SlidingWindowCounterRateLimiter), counters.limiter(MovingWindowRateLimiter)
    messages = []
    if shared:
        real = counters.shared.call
        counters.shared.call = lambda calls: messages.append(calls) or real(calls)
    rate_item, login_item, client = limits.parse("2/minute"), limits.parse("1/minute"), _key()
    both = (rate, (rate_item, "requests", client), login, (login_item, "failures", client))
    allowed, stats, passed = rate_limit_and_login_test(*both)
    assert (allowed, stats.remaining, passed) == (True, 1, True)
    login.hit(login_item, "failures", client)
    allowed, stats, passed = rate_limit_and_login_test(*both)
    assert (allowed, stats.remaining, passed) == (True, 0, False)
    assert rate_limit_and_login_test(*both)[0] is False
    assert len(messages) == (4 if shared else 0)  # three requests and one hit: a message each
