"""Slowing down credential guessing: failed logins are counted per client address, and past
the limit (`BERTH_LOGIN_FAILURE_LIMIT`, default 10 per minute) that address gets 429 for every
credential it presents until the window moves on. Only failures count; anonymous requests and
good credentials never do. The counts are shared through Redis when it is configured, else by the
`--workers` processes through the counter table in their shared memory, which also keeps them
while Redis cannot be reached (app/counters/).

The window is `limits`' sliding window counter, as for the rate limit: the count of the current
window plus the previous window's weighted by how much of it is still to run. The memory table
keeps nothing else (app/counters/windows.py); for a throttle it behaves as a moving window would
where it matters: the limit's failures are allowed, then every attempt is refused until the
window has moved on, and Retry-After says when."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import limits
from limits.strategies import SlidingWindowCounterRateLimiter

from app.counters import Counters
from app.spec.errors import RegistryError

NAMESPACE = "berth-login-failures"


class LoginThrottle:
    def __init__(self, limit: str = "10/minute", counters: Counters | None = None) -> None:
        try:
            self.item = limits.parse(limit)
        except ValueError:
            raise SystemExit(f"BERTH_LOGIN_FAILURE_LIMIT={limit!r} is not a rate such as '10/minute'") from None
        self.limiter = (counters or Counters()).limiter(SlidingWindowCounterRateLimiter)

    @contextmanager
    def attempt(self, client: str):
        """Wrap one credential check from `client` (an IP address)."""
        if not self.limiter.test(self.item, NAMESPACE, client):
            reset = self.limiter.get_window_stats(self.item, NAMESPACE, client).reset_time
            # time.time, not an app.clock.Clock: the `limits` storage reads it itself and takes no clock.
            wait = max(1, math.ceil(reset - time.time()))
            raise RegistryError(
                "TOOMANYREQUESTS",
                f"too many failed logins from {client}; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        try:
            yield
        except RegistryError as error:
            if error.code == "UNAUTHORIZED":
                self.limiter.hit(self.item, NAMESPACE, client)
            raise
