"""The system clock, as the code read the clocks before it took a Clock: aware UTC, naive UTC for
the database, epoch seconds and a monotonic clock; and the test clock that stands in for it."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from app.clock import SYSTEM, Clock
from tests.support.clock import FakeClock


@pytest.fixture
def far_from_utc(monkeypatch):
    """A local time zone hours away from UTC, so that local time cannot pass for UTC."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14, no daylight saving
    time.tzset()
    assert time.localtime().tm_gmtoff == 14 * 3600, "no time zone data: this test would prove nothing"
    yield
    monkeypatch.undo()
    time.tzset()


def test_now_is_timezone_aware_utc_and_utcnow_the_same_instant_naive(far_from_utc):
    before = dt.datetime.now(dt.UTC)
    now, naive = SYSTEM.now(), SYSTEM.utcnow()
    after = dt.datetime.now(dt.UTC)
    assert now.tzinfo is dt.UTC and naive.tzinfo is None
    assert before <= now <= naive.replace(tzinfo=dt.UTC) <= after


def test_time_is_epoch_seconds_and_monotonic_never_goes_back():
    assert abs(SYSTEM.time() - time.time()) < 1
    assert abs(SYSTEM.time() - SYSTEM.now().timestamp()) < 1
    readings = [SYSTEM.monotonic() for _ in range(1000)]
    assert readings == sorted(readings)


def test_the_fake_clock_is_a_clock_that_moves_only_when_told():
    clock: Clock = FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    start, tick = clock.now(), clock.monotonic()
    assert clock.now() == start
    clock.advance(90)
    assert clock.now() - start == dt.timedelta(seconds=90) and clock.monotonic() - tick == 90
    assert clock.utcnow() == dt.datetime(2026, 1, 1, 0, 1, 30)
