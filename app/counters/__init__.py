"""Where rate-limit and login-failure counters live: in Redis when `BERTH_REDIS_URL` is set, so
that replicas share one budget; else in a table of sliding-window counters in memory
(app/counters/windows.py), which the processes of `berth serve --workers N` share (the
supervisor makes it before it forks them), so that they hold one budget between them. And in
that table while Redis cannot be reached.

Why fall back rather than fail: the counters protect the service, they are not what it is for.
Failing with Redis answered 500 to every request (issue 16). While Redis is lost each machine
counts on its own: a budget holds per machine instead of across replicas (N replicas allow up to
N times it), but every request is answered and a client guessing passwords is still throttled by
each replica it reaches.

Redis is not asked on every request during an outage: after a failure, one request tries it
again every RETRY_SECONDS while the others count in memory, and every call has a short timeout,
so one that hangs costs one request at most one timeout per interval. When a try succeeds Redis
is used again (what was counted in memory meanwhile is not carried over). Logged: one warning
when it is lost, a reminder at most once a minute while it stays lost, one line when it is back.
Counted: berth_dependency_fallback_total{dependency="redis"}, one per counter operation done in
memory instead.

/readyz does not look at Redis: every replica shares the one Redis, so failing readiness with it
would take every replica out of the Service at once and turn a degraded service into none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.util import WindowStats

from app.counters.windows import WindowTable

log = logging.getLogger("berth.counters")

MEMORY = "memory://"
RETRY_SECONDS = 5.0
REMINDER_SECONDS = 60.0
# Redis answers in well under a millisecond; a request must not wait long for one that hangs.
# Options in the URL (`?socket_timeout=2`) take precedence.
REDIS_TIMEOUT_SECONDS = 0.5


def _storage(uri: str):
    options: dict[str, bool | float] = {"wrap_exceptions": True}
    if uri.split("://", 1)[0] in ("redis", "rediss", "redis+unix"):
        options.update(socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS)
    return storage_from_string(uri, **options)


class Counters:
    """`uri`: Redis, or memory://. `table`: the memory counters (the `--workers` processes'
    shared table, app/server/workers.py); by default one of this process's own."""

    def __init__(self, uri: str = MEMORY, table: WindowTable | None = None) -> None:
        self.uri = uri
        self.local = table if table is not None else WindowTable()
        self.shared: Any = _storage(uri) if uri != MEMORY else None
        self.on_fallback: Callable[[], None] = lambda: None  # the metric, wired by app/web.py
        self._lock = threading.Lock()
        self._lost_at: float | None = None
        self._retry_at = 0.0
        self._reminded_at = 0.0

    def limiter(self, strategy: type) -> Limiter:
        """A `limits` strategy (SlidingWindowCounterRateLimiter: the one the memory table
        keeps) over these counters."""
        return Limiter(self, strategy(self.shared) if self.shared is not None else None, strategy(self.local))

    def run(self, operation: Callable, shared, local):
        if shared is not None and self._may_try():
            try:
                result = operation(shared)
            except StorageError as e:
                self._lost(e)
            else:
                if self._lost_at is not None:
                    self._reached()
                return result
        if shared is not None:
            self.on_fallback()
        return operation(local)

    def _may_try(self) -> bool:
        if self._lost_at is None:
            return True
        with self._lock:
            now = time.monotonic()
            if self._lost_at is None or now >= self._retry_at:
                self._retry_at = now + RETRY_SECONDS
                return True
            return False

    def _lost(self, error: StorageError) -> None:
        with self._lock:
            now = time.monotonic()
            self._retry_at = now + RETRY_SECONDS
            if self._lost_at is None:
                self._lost_at = self._reminded_at = now
                log.warning(
                    "Redis cannot be reached (%s): rate limits and login failures are counted in "
                    "this machine's memory until it answers again",
                    _reason(error),
                )
            elif now - self._reminded_at >= REMINDER_SECONDS:
                self._reminded_at = now
                log.warning(
                    "Redis still cannot be reached after %d s (%s): counting in this machine's memory",
                    now - self._lost_at,
                    _reason(error),
                )

    def _reached(self) -> None:
        with self._lock:
            if self._lost_at is not None:
                log.warning(
                    "Redis answers again after %d s: rate limits and login failures are shared again",
                    time.monotonic() - self._lost_at,
                )
                self._lost_at = None


def _reason(error: StorageError) -> str:
    cause = getattr(error, "storage_error", None) or error.__cause__ or error
    return f"{type(cause).__name__}: {cause}"


class Limiter:
    """One `limits` strategy, run on Redis while it answers and on the memory table otherwise."""

    def __init__(self, counters: Counters, shared, local) -> None:
        self.counters = counters
        self.shared = shared
        self.local = local

    def hit(self, *args) -> bool:
        return self.counters.run(lambda limiter: limiter.hit(*args), self.shared, self.local)

    def test(self, *args) -> bool:
        return self.counters.run(lambda limiter: limiter.test(*args), self.shared, self.local)

    def get_window_stats(self, *args) -> WindowStats:
        return self.counters.run(lambda limiter: limiter.get_window_stats(*args), self.shared, self.local)

    def hit_with_stats(self, *args) -> tuple[bool, WindowStats]:
        """`hit`, and the window's stats after it, from the same counters."""
        return self.counters.run(
            lambda limiter: (limiter.hit(*args), limiter.get_window_stats(*args)), self.shared, self.local
        )
