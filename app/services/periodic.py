"""Background work that `berth serve` repeats on an interval (garbage collection, retention)."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from app.db.setup import end_transaction_left_open

log = logging.getLogger("berth.periodic")


class Periodic:
    """Calls `run_once` every `interval` in a daemon thread, from `start` until `stop`; an
    interval of 0 never starts it. A failed run is logged and the next one tries again."""

    thread_name = "periodic"

    def __init__(self, interval: dt.timedelta) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self):
        if self.interval.total_seconds() > 0:
            self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def run_once(self):
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval.total_seconds()):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("%s failed; trying again at the next interval", self.thread_name)
            try:  # a turn never leaves a transaction open for the next (app/db/setup.py)
                end_transaction_left_open(self.thread_name)
            except Exception:  # noqa: BLE001 - as for a failed turn
                log.exception("%s: checking for a transaction left open failed", self.thread_name)
