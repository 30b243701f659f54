"""A clock the test moves by hand (app/clock.py): time stands still until `advance`, so an
expiry, a lease or a cool-down is crossed exactly when the test says, never by waiting."""

from __future__ import annotations

import datetime as dt
import threading


class FakeClock:
    def __init__(self, start: dt.datetime | None = None) -> None:
        # Starts at the real time, so rows written by code that reads the system clock
        # (timestamps nobody here decides on) still sort sensibly against it.
        self._now = start or dt.datetime.now(dt.UTC)
        self._monotonic = 1000.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
            self._monotonic += seconds

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def utcnow(self) -> dt.datetime:
        return self.now().replace(tzinfo=None)

    def time(self) -> float:
        return self.now().timestamp()

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic
