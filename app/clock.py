"""What time it is, as one object the time-dependent domain code is handed (token expiry, the
identity provider's key cache, operation leases) instead of reading the system clock itself.

Production code takes `SYSTEM` by default, which reads the clocks exactly as the code did before
it took a clock. Tests hand in tests/support/clock.py's FakeClock and move time on by hand, so
that an expiry, a lease or a cool-down is proven without waiting for it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""

    def utcnow(self) -> dt.datetime:
        """The current time as the database stores it: naive UTC (app/db/models.py utcnow)."""

    def time(self) -> float:
        """Seconds since the epoch, as time.time()."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, as time.monotonic(): for intervals only."""


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def utcnow(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM: Clock = SystemClock()
