"""The counter table (app/counters/windows.py): the same answers as `limits`' own MemoryStorage
for the same hits at the same times; one budget across processes forked after it is made; a
process killed while it holds the table's lock does not block the others; a table full of live
counters counts the rest in the process's memory, without errors; and no thread is started per
hit (MemoryStorage started a timer thread from nearly every one)."""

from __future__ import annotations

import fcntl
import logging
import os
import random
import signal
import threading
import time

import limits
import pytest
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from app.counters import Counters
from app.counters.windows import BUCKET, STRIPES, WindowTable


def in_children(count: int, work) -> list[str]:
    """`work()` in `count` processes forked now (they share a table made before), each one's
    result, a line, read back in the parent."""
    read, write = os.pipe()
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, f"{work()}\n".encode())
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(write)
    with os.fdopen(read) as f:
        return [line.strip() for line in f]


class Clock:
    """time.time as both storages read it, moved by the test."""

    def __init__(self, monkeypatch, now: float) -> None:
        self.now = now
        monkeypatch.setattr(time, "time", lambda: self.now)


@pytest.mark.parametrize("seed", range(6))
def test_hits_answer_as_limits_memory_storage_does_across_window_rollovers(monkeypatch, seed):
    rng = random.Random(seed)
    clock = Clock(monkeypatch, 1_700_000_000.0 + rng.random() * 100)
    ours, theirs = SlidingWindowCounterRateLimiter(WindowTable(1024)), SlidingWindowCounterRateLimiter(MemoryStorage())
    items = [limits.parse("5/minute"), limits.parse("12/10 seconds"), limits.parse("3/second")]
    for _ in range(1500):
        clock.now += rng.choice([0, 0.01, 0.3, 1.7, 4.9, 13, 61, 130])  # within, across and past windows
        item = rng.choice(items)
        client = rng.choice(["192.0.2.1", "192.0.2.2", "2001:db8::1"])
        cost = rng.choice([1, 1, 1, 2])
        assert ours.hit(item, "req", client, cost=cost) == theirs.hit(item, "req", client, cost=cost)
        assert ours.test(item, "req", client) == theirs.test(item, "req", client)
        assert ours.get_window_stats(item, "req", client) == theirs.get_window_stats(item, "req", client)
        key = item.key_for("req", client)
        assert ours.storage.get_sliding_window(key, item.get_expiry()) == theirs.storage.get_sliding_window(
            key, item.get_expiry()
        )


def test_the_previous_window_is_weighted_by_what_is_left_of_it(monkeypatch):
    clock = Clock(monkeypatch, 6000.0)  # the start of a 60 s window
    limiter = SlidingWindowCounterRateLimiter(WindowTable(1024))
    item = limits.parse("10/minute")
    assert [limiter.hit(item, "k") for _ in range(11)] == [True] * 10 + [False]
    clock.now += 60 + 15  # a quarter into the next window: 10 x 3/4 of the last one weigh 7.5
    assert limiter.get_window_stats(item, "k").remaining == 3
    assert [limiter.hit(item, "k") for _ in range(4)] == [True] * 3 + [False]  # floor(7.5 + 3) + 1 > 10
    clock.now += 60  # the window after: the first no longer counts, the 3 hits weigh 3 x 3/4
    assert limiter.get_window_stats(item, "k").remaining == 8


def test_processes_forked_after_the_table_is_made_hold_one_budget():
    table = WindowTable(1024, shared=True)
    item = limits.parse("300/minute")

    def hits() -> int:
        limiter = SlidingWindowCounterRateLimiter(table)
        return sum(limiter.hit(item, "shared", "192.0.2.9") for _ in range(200))

    allowed = [int(line) for line in in_children(3, hits)]
    assert sum(allowed) == 300 and len(allowed) == 3  # 600 hits, exactly the budget allowed
    limiter = SlidingWindowCounterRateLimiter(table)
    assert limiter.get_window_stats(item, "shared", "192.0.2.9").remaining == 0


def test_threads_of_several_processes_hitting_many_keys_at_once_hold_every_budget_exactly():
    table = WindowTable(4096, shared=True)
    item, keys = limits.parse("20/minute"), [f"198.51.100.{i}" for i in range(40)]

    def threads_hammering() -> str:
        limiter, allowed, errors = SlidingWindowCounterRateLimiter(table), [], []

        def hammer(offset: int) -> None:
            try:
                for i in range(600):
                    allowed.append(limiter.hit(item, "req", keys[(i + offset) % len(keys)]))
            except Exception as e:  # an EDEADLK, say
                errors.append(repr(e))

        threads = [threading.Thread(target=hammer, args=(n * 7,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return f"{sum(allowed)} {len(errors)}"

    results = [tuple(map(int, line.split())) for line in in_children(2, threads_hammering)]
    assert len(results) == 2 and sum(errors for _, errors in results) == 0
    assert sum(allowed for allowed, _ in results) == 20 * len(keys)  # 4,800 hits, 120 per key


def test_a_process_killed_while_it_holds_the_lock_does_not_block_the_others():
    table = WindowTable(1024, shared=True)
    item = limits.parse("5/minute")
    bucket = table._hash(item.key_for("k"))[1]
    held = os.pipe()
    pid = os.fork()
    if pid == 0:
        table._lock(bucket)
        os.write(held[1], b"x")
        time.sleep(60)
        os._exit(0)
    try:
        assert os.read(held[0], 1) == b"x"
        with pytest.raises(OSError):  # it does hold the lock
            fcntl.lockf(table.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, bucket % STRIPES)
        os.kill(pid, signal.SIGKILL)
    finally:
        os.waitpid(pid, 0)
    done = []
    hitter = threading.Thread(target=lambda: done.append(SlidingWindowCounterRateLimiter(table).hit(item, "k")))
    hitter.start()
    hitter.join(timeout=2)
    assert done == [True]


def test_threads_of_one_process_are_not_taken_for_a_deadlock_with_another_process():
    # Thread A here holds stripe 1; the other process holds stripe 2 and waits for 1; thread B
    # here asks for 2. POSIX record locks belong to the process, so the kernel sees a cycle and
    # answers B with EDEADLK, though A lets 1 go without waiting for anything.
    table = WindowTable(1024, shared=True)
    go, ready = os.pipe(), os.pipe()
    pid = os.fork()  # before any lock is held: the child's thread locks are free
    if pid == 0:
        os.read(go[0], 1)
        table._lock(2)
        os.write(ready[1], b"x")
        table._lock(1)  # waits for thread A
        table._unlock(1)
        table._unlock(2)
        os._exit(0)
    try:
        table._lock(1)  # thread A (this one)
        os.write(go[1], b"x")
        assert os.read(ready[0], 1) == b"x"
        time.sleep(0.2)  # the child waits for stripe 1 by now
        outcome = []

        def thread_b() -> None:
            try:
                table._lock(2)
                table._unlock(2)
                outcome.append("locked")
            except OSError as e:
                outcome.append(e)

        b = threading.Thread(target=thread_b)
        b.start()
        time.sleep(0.2)
        table._unlock(1)
        b.join(timeout=5)
        assert outcome == ["locked"]
    finally:
        os.waitpid(pid, 0)


def test_a_table_full_of_live_counters_counts_the_rest_in_this_process(caplog):
    table = WindowTable(BUCKET)  # one bucket: eight keys fill it
    overflowed = []
    table.on_overflow = lambda: overflowed.append(1)
    limiter = SlidingWindowCounterRateLimiter(table)
    item = limits.parse("2/minute")
    clients = [f"198.51.100.{i}" for i in range(20)]
    with caplog.at_level(logging.WARNING, logger="berth.counters"):
        for _ in range(3):
            assert [limiter.hit(item, "req", c) for c in clients].count(True) in (20, 0)
    assert [limiter.test(item, "req", c) for c in clients] == [False] * 20  # every budget holds
    assert all(limiter.get_window_stats(item, "req", c).remaining == 0 for c in clients)
    assert len(table._overflow) == 12 and len(overflowed) == 12  # one overflow each, then found there
    warnings = [r.getMessage() for r in caplog.records if "table is full" in r.getMessage()]
    assert len(warnings) == 1  # not one per request


def test_a_slot_whose_window_is_over_is_taken_by_another_key(monkeypatch):
    clock = Clock(monkeypatch, 6000.0)
    table = WindowTable(BUCKET)
    limiter = SlidingWindowCounterRateLimiter(table)
    item = limits.parse("1/minute")
    assert all(limiter.hit(item, f"old-{i}") for i in range(BUCKET))
    clock.now += 120  # older than the previous window: free
    assert all(limiter.hit(item, f"new-{i}") for i in range(BUCKET))
    assert table._overflow == {}


def test_the_memory_counters_start_no_thread_per_hit(monkeypatch):
    started = []
    real = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread) or real(thread))
    limiter = Counters().limiter(SlidingWindowCounterRateLimiter)
    item = limits.parse("1000/minute")
    for i in range(100):
        limiter.hit_with_stats(item, "req", f"192.0.2.{i % 7}")
        time.sleep(0.002)  # MemoryStorage's timer (0.01 s) has ended by the next few hits
    assert started == []
