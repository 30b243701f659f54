"""Waiting on a condition instead of sleeping for a fixed time: done as soon as it holds, and a
clear failure if it does not hold by the deadline (what a fixed sleep turns into a flaky assert)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], object], seconds: float = 20.0, interval: float = 0.05, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what or condition}"
        time.sleep(interval)
