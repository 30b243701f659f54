"""The operation worker: a background thread in every `berth serve` process that runs due
lifecycle operations. Several replicas may run one each; operations are claimed with a lease."""

from __future__ import annotations

import logging
import threading

import peewee as pw

from app.lifecycle.operations import OperationRunner

log = logging.getLogger("berth.lifecycle")


class Worker:
    def __init__(self, runner: OperationRunner, poll_interval: float = 2.0) -> None:
        self.runner = runner
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Worker:
        self._thread = threading.Thread(target=self._loop, name="operation-worker", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Run due operations now (called when one is queued) instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.runner.run_next() is not None:
                    pass
            except pw.PeeweeException:
                log.exception("operation worker: database error; retrying at the next poll")
            except Exception:  # noqa: BLE001 - the worker must outlive any one bad operation
                log.exception("operation worker: unexpected error")
            self._wake.wait(self.poll_interval)
