"""Periodic background work: it runs on its interval, a failed run does not stop the next, an
interval of 0 never starts, and stop() ends it."""

from __future__ import annotations

import datetime as dt
import threading

from app.services.periodic import Periodic


class Counting(Periodic):
    def __init__(self, interval, fail_first=False):
        super().__init__(interval)
        self.runs = 0
        self.fail_first = fail_first
        self.ran_twice = threading.Event()

    def run_once(self):
        self.runs += 1
        if self.runs >= 2:
            self.ran_twice.set()
        if self.fail_first and self.runs == 1:
            raise RuntimeError("boom")


def test_a_failed_run_is_logged_and_the_next_one_runs(caplog):
    job = Counting(dt.timedelta(milliseconds=10), fail_first=True).start()
    try:
        assert job.ran_twice.wait(10)
    finally:
        job.stop()
    assert "failed; trying again" in caplog.text
    runs = job.runs
    assert job.stopping and not job._thread.is_alive()
    assert job.runs == runs


def test_an_interval_of_zero_never_starts():
    job = Counting(dt.timedelta(0)).start()
    assert job._thread is None
    job.stop()
    assert job.runs == 0
