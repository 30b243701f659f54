"""The "database down until T" circuit: once connecting to PostgreSQL has failed, requests fail
fast (503) for a short while instead of each trying again, and one request at a time probes
whether it is back. So an outage costs every request a moment, not a queue of connect attempts.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("berth.db")


class ConnectCircuit:
    """Closed while connects succeed. `failed()` opens it for `open_for` seconds; then the next
    caller of `admit()` is let through as the probe (the others keep failing fast for up to
    `probe_for` seconds, the longest a connect attempt takes), and its outcome closes it or opens
    it again."""

    def __init__(self, open_for: float, probe_for: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.open_for = open_for
        self.probe_for = probe_for
        self._clock = clock
        self._lock = threading.Lock()  # guards two fields; never held while connecting
        self._down_until: float | None = None  # None: closed

    @property
    def is_open(self) -> bool:
        """Whether the last connect attempt (of any caller) failed."""
        return self._down_until is not None

    def admit(self) -> bool:
        """Whether this caller may try to connect now; False means fail fast."""
        with self._lock:
            if self._down_until is None:
                return True
            now = self._clock()
            if now < self._down_until:
                return False
            self._down_until = now + self.probe_for  # this caller probes; the others wait for it
            return True

    def failed(self) -> None:
        with self._lock:
            if self._down_until is None:
                log.error("PostgreSQL cannot be reached: answering 503 and trying again every %.0fs", self.open_for)
            self._down_until = self._clock() + self.open_for

    def succeeded(self) -> None:
        with self._lock:
            if self._down_until is not None:
                log.warning("PostgreSQL is reachable again")
            self._down_until = None

    def retry_after(self) -> int:
        """Whole seconds a client should wait before trying again (at least 1)."""
        down_until = self._down_until
        if down_until is None:
            return 1
        return max(1, math.ceil(down_until - self._clock()))
