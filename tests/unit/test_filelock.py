"""app/filelock.py: an exclusive flock waited for until a deadline, on real files."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from app.filelock import flock_until


def _open(path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def test_a_free_lock_is_taken_at_once_even_past_the_deadline(tmp_path):
    fd = _open(tmp_path / "lock")
    try:
        assert flock_until(fd, time.monotonic() - 1)  # tried once before the deadline is checked
    finally:
        os.close(fd)


def test_a_held_lock_is_given_up_at_the_deadline_and_taken_once_released(tmp_path):
    holder, waiter = _open(tmp_path / "lock"), _open(tmp_path / "lock")  # two open files: two owners
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        assert not flock_until(waiter, started + 0.2)
        assert 0.2 <= time.monotonic() - started < 1.0
        threading.Timer(0.1, fcntl.flock, (holder, fcntl.LOCK_UN)).start()
        assert flock_until(waiter, time.monotonic() + 5)  # taken soon after the release
    finally:
        os.close(holder)
        os.close(waiter)
