"""Rate-limit and login-failure counters on the real Redis at 127.0.0.1:6379: replicas (two
Counters on one URL) share one budget; with Redis unreachable each counts in its memory table,
every call is still answered, the fallback is counted and logged once. (The memory table itself:
tests/unit/test_counter_windows.py.)"""

from __future__ import annotations

import logging
import secrets

import limits
import pytest
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from app.counters import MEMORY, Counters

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
    a = Counters(redis_url).limiter(SlidingWindowCounterRateLimiter)
    b = Counters(redis_url).limiter(SlidingWindowCounterRateLimiter)
    assert [a.hit(item, "t", key), b.hit(item, "t", key), a.hit(item, "t", key)] == [True, True, True]
    assert not b.hit(item, "t", key) and not a.test(item, "t", key)
    assert b.get_window_stats(item, "t", key).remaining == 0


def test_in_memory_counters_are_per_process():
    item, key = limits.parse("1/minute"), _key()
    a = Counters(MEMORY).limiter(SlidingWindowCounterRateLimiter)
    b = Counters(MEMORY).limiter(SlidingWindowCounterRateLimiter)
    assert a.hit(item, key) and not a.hit(item, key)
    assert b.hit(item, key)


def test_without_redis_every_call_is_answered_in_memory_and_counted(caplog):
    counters = Counters(UNREACHABLE)
    fallbacks = []
    counters.on_fallback = lambda: fallbacks.append(1)
    limiter = counters.limiter(SlidingWindowCounterRateLimiter)
    item, key = limits.parse("2/minute"), _key()
    with caplog.at_level(logging.WARNING, logger="berth.counters"):
        results = [limiter.hit(item, key) for _ in range(3)]
    assert results == [True, True, False]  # the budget still holds, per process
    assert len(fallbacks) == 3
    lost = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(lost) == 1  # one warning, not one per request


def test_the_memory_table_keeps_sliding_window_counters_only():
    with pytest.raises(NotImplementedError):
        Counters(MEMORY).limiter(MovingWindowRateLimiter)
