"""The SQLite writer turnstile (app/db/writer.py): threads and processes take turns, nested turns
are the same turn, a turn never granted in time is refused, and `transaction()` answers that
refusal with a retryable 503."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from app.db import setup
from app.db.models import database
from app.db.writer import Turnstile, WriterBusy


def test_threads_of_one_process_take_turns(tmp_path):
    turnstile = Turnstile(str(tmp_path / "w.lock"))
    inside, most = 0, 0
    guard = threading.Lock()

    def work():
        nonlocal inside, most
        for _ in range(50):
            with turnstile.turn():
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0002)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1


def test_a_nested_turn_is_the_same_turn(tmp_path):
    turnstile = Turnstile(str(tmp_path / "w.lock"), busy_seconds=1)
    with turnstile.turn():
        with turnstile.turn():  # would wait on itself (and time out) if it were not reentrant
            pass
        # still held: another thread is refused
        refused = []
        t = threading.Thread(target=lambda: refused.append(_refused(turnstile)))
        t.start()
        t.join()
        assert refused == [True]


def _refused(turnstile: Turnstile) -> bool:
    try:
        with turnstile.turn():
            return False
    except WriterBusy:
        return True


def _hold(path: str, held, release) -> None:
    with Turnstile(path).turn():
        held.set()
        release.wait(30)


def test_processes_exclude_each_other_and_a_turn_not_granted_in_time_is_refused(tmp_path):
    path = str(tmp_path / "w.lock")
    ctx = multiprocessing.get_context("fork")  # a forked child opens its own lock file
    held, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(path, held, release))
    child.start()
    try:
        assert held.wait(10)
        mine = Turnstile(path, busy_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(WriterBusy):
            with mine.turn():
                pass
        assert time.monotonic() - started >= 0.3
        release.set()
        child.join(10)
        with mine.turn():  # the other process left: the turn is ours at once
            pass
    finally:
        release.set()
        child.join(10)


def test_a_transaction_that_gets_no_turn_is_a_retryable_503(tmp_path, monkeypatch):
    db = setup.open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    try:
        assert db.berth_writer.lock_path == f"{tmp_path / 'berth.db'}-writer.lock"
        monkeypatch.setattr(db.berth_writer, "busy_seconds", 0.2)
        held, release = threading.Event(), threading.Event()

        def hold():
            with setup.transaction():
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(10)
        try:
            with pytest.raises(setup.DatabaseUnavailable) as refused:
                with setup.transaction():
                    pass
            assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"
        finally:
            release.set()
            holder.join()
    finally:
        database.obj.close()
