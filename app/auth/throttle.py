"""Slowing down credential guessing: failed logins are counted per client address, and past
the limit (`BERTH_LOGIN_FAILURE_LIMIT`, default 10 per minute) that address gets 429 for every
credential it presents until the window moves on. Only failures count; anonymous requests and
good credentials never do. The counts are shared through Redis when it is configured, else by the
`--workers` processes through their supervisor's counter service, and kept per process while
those cannot be reached (app/counters/)."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import limits
from limits.strategies import MovingWindowRateLimiter

from app.counters import Counters
from app.spec.errors import RegistryError

NAMESPACE = "berth-login-failures"


class LoginThrottle:
    def __init__(self, limit: str = "10/minute", counters: Counters | None = None) -> None:
        try:
            self.item = limits.parse(limit)
        except ValueError:
            raise SystemExit(f"BERTH_LOGIN_FAILURE_LIMIT={limit!r} is not a rate such as '10/minute'") from None
        self.limiter = (counters or Counters()).limiter(MovingWindowRateLimiter)

    def test_args(self, client: str) -> tuple:
        """The arguments of this throttle's `test` for `client`."""
        return self.item, NAMESPACE, client

    @staticmethod
    def remember(req, client: str, passed: bool) -> None:
        """Keep the test for `client` done with the request's rate limit (app/edge/rate_limit.py)
        for the request's first credential check, which then need not ask again."""
        req.context.login_test = (client, passed)

    @contextmanager
    def attempt(self, client: str, tested: tuple[str, bool] | None = None):
        """Wrap one credential check from `client` (an IP address). `tested`: the test already
        done for this request (`remember`), used if it was for `client`."""
        passed = (
            tested[1] if tested is not None and tested[0] == client else self.limiter.test(self.item, NAMESPACE, client)
        )
        if not passed:
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
