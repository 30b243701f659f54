"""Sliding-window counters in a fixed table of memory that `berth serve --workers` processes
share: one budget per client address across the workers of one machine without Redis, and no
hop to another process (app/server/workers.py makes the table before it forks them). A single
process keeps the same table to itself; every process also counts in one while Redis cannot be
reached (app/counters/). It replaces the `limits` library's MemoryStorage, which started a timer
thread from nearly every hit to expire its keys (~100 thread starts a second under load, each a
GIL hand-off: 0.1-0.3 ms of CPU per request).

The table. An anonymous shared mapping (`mmap.mmap(-1, size)` is MAP_SHARED): made before the
fork, it is shared by this server's processes and nothing else (no file, no socket, no name).
SLOTS slots of SLOT.size bytes (128 Ki x 48 B = 6 MiB of address space; a page is only
allocated when a slot in it is first written, but the hash spreads keys over all of them:
3,000 addresses made 5.4 MiB resident; being shared it counts once in PSS, however many
workers). A slot holds one key's counter: a keyed hash of the key (blake2b under a key made
at random at each start, so clients cannot choose addresses that collide), its current window's
index, the window's length, and the previous and current windows' counts. A key's slot is one
of the BUCKET slots of the bucket its hash names; a slot whose counts are older than the
previous window (or that was never used) is free for another key. The default budget
(500 per 10 minutes) keeps an address's slot for at most 20 minutes; an address uses one slot
per route prefix with a limit of its own, and one more once it fails a login. Hashed into 16 Ki
buckets of 8, ~25,000 live keys fit with (on average) none left over, 50,000 with ~0.2% left
over, 100,000 with ~6%. A key whose bucket is full of live counters is counted in this
process's own memory instead (a flood of distinct addresses: each process then holds such an
address to the budget on its own); logged at most once a minute and counted as
berth_dependency_fallback_total{dependency="counter_table"}.

Exclusion. Within a process, a threading.Lock per stripe of buckets; across processes, POSIX
record locks (fcntl.lockf) on one byte per stripe of a memory file (memfd; an unlinked
temporary file where there is none) inherited across the fork. Record locks belong to the
process, so the inherited descriptor serves every worker, and the kernel releases a process's
locks when it dies, kill -9 included: a worker killed holding one never blocks the others. A
slot is read and written whole under its stripe's locks (one struct.pack_into), so no torn slot
is ever visible. ~4 us a lock and unlock on the development VM. The kernel's deadlock detection
sees a process, not its threads, and can refuse a lock with EDEADLK where there is no deadlock
(no thread ever holds two stripes): that is waited out (`_lock`).

The counter is `limits`' sliding window counter (the same weighting of the previous window by
how much of it is left, the same windows: int(now / expiry)), as a `limits` storage for
SlidingWindowCounterRateLimiter, so the strategies and app/counters/'s Counters work unchanged;
tests/unit/test_counter_windows.py compares it with MemoryStorage hit by hit. The login
throttle (app/auth/throttle.py) uses it too: a moving window keeps a timestamp per failure,
which a fixed slot cannot hold for any limit an operator may set, and the sliding window counter
behaves the same for the throttle's purpose (N failures, then 429 until the window moves on,
with the reset time in Retry-After). Fixed and moving windows are not implemented.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable

from limits.storage import SlidingWindowCounterSupport, Storage

log = logging.getLogger("berth.counters")

SLOTS = 128 * 1024
BUCKET = 8  # slots a key may use: its bucket
STRIPES = 64  # locks; bucket b is under lock b % STRIPES
# digest, current window's index, window length (s), previous window's count, current window's count
SLOT = struct.Struct("<16sqqqq")
EMPTY = bytes(16)
REMINDER_SECONDS = 60.0


def _locks_file() -> int:
    """A descriptor for the cross-process locks: a file in memory, or an unlinked temporary
    file, so that nothing is left behind on disk, however the server ends."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("berth-counter-locks", os.MFD_CLOEXEC)
    with tempfile.TemporaryFile() as f:
        return os.dup(f.fileno())


class WindowTable(Storage, SlidingWindowCounterSupport):
    """The table, as a `limits` storage. `shared`: the processes forked after it is made use it
    too (they are told apart by the cross-process locks); else this process's alone."""

    STORAGE_SCHEME = None  # made directly, never from a URI

    def __init__(self, slots: int = SLOTS, shared: bool = False) -> None:
        super().__init__(wrap_exceptions=True)
        self.buckets = max(1, slots // BUCKET)
        self.memory = mmap.mmap(-1, self.buckets * BUCKET * SLOT.size)
        self.secret = os.urandom(32)
        self.fd = _locks_file() if shared else -1
        self.shared = shared
        self._thread_locks = [threading.Lock() for _ in range(STRIPES)]
        self._overflow: dict[bytes, tuple[int, int, int, int]] = {}
        self._overflow_lock = threading.Lock()
        self._sweep_at = 1024
        self._warned_at = -math.inf
        self.on_overflow: Callable[[], None] = lambda: None  # the metric, wired by app/web.py

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return OSError

    def close(self) -> None:
        self.memory.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # The sliding window counter (what SlidingWindowCounterRateLimiter calls).

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        digest, bucket = self._hash(key)
        self._lock(bucket)
        try:
            now = time.time()
            offset, state = self._find(digest, bucket, now, claim=True)
            window, previous, current = _roll(state, now, expiry)
            weighted = previous * _previous_ttl(previous, now, expiry) / expiry + current
            if math.floor(weighted) + amount > limit:
                return False
            self._write(offset, digest, (window, expiry, previous, current + amount))
            return True
        finally:
            self._unlock(bucket)

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        digest, bucket = self._hash(key)
        self._lock(bucket)
        try:
            now = time.time()
            _, state = self._find(digest, bucket, now, claim=False)
        finally:
            self._unlock(bucket)
        _, previous, current = _roll(state, now, expiry)
        return previous, _previous_ttl(previous, now, expiry), current, (1 - ((now / expiry) % 1)) * expiry + expiry

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.clear(key)

    def clear(self, key: str) -> None:
        digest, bucket = self._hash(key)
        self._lock(bucket)
        try:
            offset, state = self._find(digest, bucket, time.time(), claim=False)
            if offset is not None and state is not None:
                SLOT.pack_into(self.memory, offset, EMPTY, 0, 0, 0, 0)
            with self._overflow_lock:
                self._overflow.pop(digest, None)
        finally:
            self._unlock(bucket)

    def reset(self) -> int | None:
        for bucket in range(self.buckets):
            self._lock(bucket)
            try:
                start = bucket * BUCKET * SLOT.size
                self.memory[start : start + BUCKET * SLOT.size] = bytes(BUCKET * SLOT.size)
            finally:
                self._unlock(bucket)
        self._overflow.clear()
        return None

    def check(self) -> bool:
        return True

    # Fixed windows: not kept here (no strategy Berth uses needs them).

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("the counter table keeps sliding window counters only")

    def get(self, key: str) -> int:
        raise NotImplementedError("the counter table keeps sliding window counters only")

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError("the counter table keeps sliding window counters only")

    # The table.

    def _hash(self, key: str) -> tuple[bytes, int]:
        digest = hashlib.blake2b(key.encode(), digest_size=16, key=self.secret).digest()
        return digest, int.from_bytes(digest[:8], "little") % self.buckets

    def _lock(self, bucket: int) -> None:
        stripe = bucket % STRIPES
        self._thread_locks[stripe].acquire()
        if self.shared:
            try:
                while True:
                    try:
                        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, stripe)
                        break
                    except OSError as e:
                        # The kernel's deadlock detection takes a process for one owner, not its
                        # threads: thread A of this process holds stripe 1, another process holds
                        # 2 and waits for 1, thread B here asks for 2: EDEADLK, though A lets 1 go
                        # without waiting for anything. No thread holds two stripes, so it never
                        # is one: wait a moment and ask again.
                        if e.errno != errno.EDEADLK:
                            raise
                        time.sleep(0.0002)
            except BaseException:
                self._thread_locks[stripe].release()
                raise

    def _unlock(self, bucket: int) -> None:
        stripe = bucket % STRIPES
        try:
            if self.shared:
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, stripe)
        finally:
            self._thread_locks[stripe].release()

    def _find(
        self, digest: bytes, bucket: int, now: float, claim: bool
    ) -> tuple[int | None, tuple[int, int, int, int] | None]:
        """The slot of `digest` (its offset, or None: counted in the overflow) and its state
        (window, expiry, previous, current), None if it has none. `claim`: a key with no slot
        gets a free one."""
        start = bucket * BUCKET * SLOT.size
        free = None
        for i, (stored, window, expiry, previous, current) in enumerate(
            SLOT.iter_unpack(self.memory[start : start + BUCKET * SLOT.size])
        ):
            if stored == digest:
                return start + i * SLOT.size, (window, expiry, previous, current)
            if free is None and (stored == EMPTY or window < int((now - expiry) / expiry)):
                free = start + i * SLOT.size
        state = self._overflow.get(digest)
        if state is not None:
            return None, state
        if free is not None or not claim:
            return free, None
        self._overflowed(now)
        return None, None

    def _write(self, offset: int | None, digest: bytes, state: tuple[int, int, int, int]) -> None:
        if offset is not None:
            SLOT.pack_into(self.memory, offset, digest, *state)
            return
        with self._overflow_lock:
            self._overflow[digest] = state
            if len(self._overflow) >= self._sweep_at:  # keep only the live ones
                now = time.time()
                self._overflow = {d: s for d, s in self._overflow.items() if s[0] >= int((now - s[1]) / s[1])}
                self._sweep_at = max(1024, 2 * len(self._overflow))

    def _overflowed(self, now: float) -> None:
        self.on_overflow()
        if now - self._warned_at >= REMINDER_SECONDS:
            self._warned_at = now
            log.warning(
                "the rate-limit counter table is full (%d slots of live counters): new client addresses are "
                "counted in each process on its own until slots free up",
                self.buckets * BUCKET,
            )


def _roll(state: tuple[int, int, int, int] | None, now: float, expiry: int) -> tuple[int, int, int]:
    """(now's window index, the previous window's count, the current window's) from a slot's
    state, as `limits`' MemoryStorage names its windows: int(now / expiry) and
    int((now - expiry) / expiry)."""
    current_window = int(now / expiry)
    if state is None:
        return current_window, 0, 0
    window, _, previous, current = state
    if window >= current_window:  # this window (or a later one: the clock went back)
        return window, previous, current
    if window == int((now - expiry) / expiry):  # the previous one
        return current_window, current, 0
    return current_window, 0, 0


def _previous_ttl(previous: int, now: float, expiry: int) -> float:
    return 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
