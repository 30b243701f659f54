"""SQLite's one writer, handed over in turn instead of fought over.

SQLite lets one write transaction run at a time; the others wait in its busy handler, which
sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries. With a dozen request threads pushing
manifests, most of a push's time went to those sleeps, long after the lock was free again (a
write transaction here holds it for well under a millisecond).

So `transaction()` (app/db/setup.py) takes this turnstile first: inside a process a lock that
wakes the next thread as soon as the last one leaves; across the processes of this machine
(`berth serve --workers`, the CLI) a file lock beside the database, tried again every fraction
of a millisecond. Then BEGIN IMMEDIATE finds SQLite's lock free. Writers that take no turn (a
single autocommit statement) still wait in SQLite's busy handler as before: the turnstile only
orders, SQLite's lock is still what excludes.

A turn is waited for at most BUSY_SECONDS, as long as SQLite's own busy timeout; then the
request fails with 503 (retry) rather than waiting forever on a writer that hangs. A thread
that must not wait that long (the event loop, which runs small manifest pushes itself:
app/server/inline.py) sets a shorter `patience` for what it runs (app/db/setup.py's
`patience`, which bounds SQLite's own busy wait on that thread's connection too).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.filelock import flock_until

BUSY_SECONDS = 30.0


class WriterBusy(Exception):
    """No turn within BUSY_SECONDS (or the thread's patience)."""


_patience = threading.local()


@contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Within this block, this thread waits at most `seconds` for a write turn (and for
    SQLite's lock: app/db/setup.py's transaction)."""
    before = getattr(_patience, "seconds", None)
    _patience.seconds = seconds
    try:
        yield
    finally:
        _patience.seconds = before


def current_patience() -> float | None:
    """This thread's `patience`, or None (the default waits)."""
    return getattr(_patience, "seconds", None)


class Turnstile:
    def __init__(self, lock_path: str | None, busy_seconds: float = BUSY_SECONDS) -> None:
        """`lock_path`: the file other processes lock too (None: this process only, for a
        database no other process can open, such as `:memory:`)."""
        self.lock_path = lock_path
        self.busy_seconds = busy_seconds
        self._lock = threading.RLock()
        self._depth = 0  # nested turns of the thread holding _lock
        self._fd: int | None = None
        self._fd_pid = 0  # the process that opened _fd: a forked worker opens its own

    @contextmanager
    def turn(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def enter(self) -> None:
        """Take a turn (nested turns of one thread are one); `leave` gives it back. `turn` pairs
        them: use it."""
        wait = self.busy_seconds
        shorter = current_patience()
        if shorter is not None:
            wait = min(wait, shorter)
        deadline = time.monotonic() + wait
        if not self._lock.acquire(timeout=wait):
            raise WriterBusy(f"no write turn within {wait:g} s")
        try:
            if self._depth == 0 and self.lock_path is not None:
                self._lock_file(deadline, wait)
        except BaseException:
            self._lock.release()
            raise
        self._depth += 1

    def leave(self) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self.lock_path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def release_held(self) -> int:
        """Give back every turn this thread holds, however deeply nested: for a transaction
        left open by a defect (app/db/setup.py's `end_transaction_left_open`), whose turn
        would otherwise keep every other writer of this machine waiting. How many it held."""
        if not self._lock._is_owned():  # type: ignore[attr-defined]  # CPython's RLock
            return 0
        held = self._depth
        self._depth = 0
        try:
            if self.lock_path is not None and self._fd is not None and self._fd_pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            while self._lock._is_owned():  # type: ignore[attr-defined]
                self._lock.release()
        return held

    def _file(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():
            # An inherited descriptor shares its lock with the parent: each process opens its own.
            assert self.lock_path is not None
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        return self._fd

    def _lock_file(self, deadline: float, wait: float) -> None:
        if not flock_until(self._file(), deadline):
            raise WriterBusy(f"no write turn within {wait:g} s")
