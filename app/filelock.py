"""An exclusive flock(2) waited for a bounded time. flock itself either waits for ever or not at
all, so this tries without waiting, again every fraction of a millisecond (0.1 ms, doubling to
1 ms), until it has the lock or the deadline passes. Used by SQLite's writer turnstile across
processes (app/db/writer.py) and an upload's lock in the filesystem store (app/storage/
filesystem.py)."""

from __future__ import annotations

import fcntl
import time

FIRST_PAUSE = 0.0001
LONGEST_PAUSE = 0.001


def flock_until(fd: int, deadline: float) -> bool:
    """Take an exclusive flock on `fd` before `deadline` (time.monotonic()): True when taken,
    False when the deadline passed first (tried at least once)."""
    pause = FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
