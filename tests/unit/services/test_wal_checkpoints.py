"""SQLite's write-ahead log copied back by a background thread (app/services/wal_checkpoints.py),
on a real database file: commits below the backstop only append to the log; one checkpoint copies
it all; checkpoints run while another thread keeps writing, the data whole; nothing starts on
PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

from app.db.models import Organization
from app.db.setup import SQLITE_PRAGMAS, open_database, transaction
from app.services.wal_checkpoints import WalCheckpoints
from tests.support import postgres


def _log_pages(path: Path) -> int:
    """Pages in the log not yet copied back, as another connection sees them (a PASSIVE no-op
    would copy them: read the log's size instead)."""
    wal = Path(f"{path}-wal")
    return max(0, (wal.stat().st_size - 32) // (4096 + 24)) if wal.exists() else 0


def _write(n: int, prefix: str) -> None:
    for i in range(n):
        with transaction():
            Organization.create(name=f"{prefix}{i}")


def test_commits_only_append_and_one_checkpoint_copies_the_log_back(tmp_path):
    path = tmp_path / "berth.db"
    db = open_database(f"sqlite:///{path}")
    try:
        assert db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == SQLITE_PRAGMAS["wal_autocheckpoint"]
        _write(600, "a")  # past SQLite's default of 1,000 pages: nothing copied on commit
        assert _log_pages(path) > 1_000
        busy, pages, copied = WalCheckpoints().run_once()
        assert busy == 0 and pages > 1_000 and copied == pages
        _write(20, "b")  # the next writes start the log over, from its beginning
        assert WalCheckpoints().run_once()[1] < 200
        assert Organization.select().count() == 620
    finally:
        db.close()


def test_a_checkpoint_runs_while_another_thread_writes(tmp_path):
    path = tmp_path / "berth.db"
    db = open_database(f"sqlite:///{path}")
    try:
        _write(100, "before")
        done = threading.Event()
        results = []

        def checkpoint():
            checkpoints = WalCheckpoints()
            while not done.is_set():
                results.append(checkpoints.run_once())
            db.close()

        thread = threading.Thread(target=checkpoint)
        thread.start()
        _write(300, "during")
        done.set()
        thread.join(10)
        assert Organization.select().count() == 400
        assert any(r is not None and r[2] > 0 for r in results)  # it copied pages meanwhile
        assert db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_nothing_starts_on_postgresql():
    db = open_database(postgres.create_database())
    try:
        assert WalCheckpoints().start()._thread is None
    finally:
        db.close()


class _BuggySqlite:
    """The driver peewee uses, reporting a SQLite with the WAL-reset bug (Debian 12's)."""

    sqlite_version, sqlite_version_info = "3.40.1", (3, 40, 1)

    def __init__(self, real) -> None:
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_with_a_sqlite_that_has_the_wal_reset_bug_the_log_is_checkpointed_as_sqlite_does(tmp_path, monkeypatch):
    """No checkpoint every 0.1 s (the pattern that makes the bug's race likely): commits
    checkpoint past SQLite's default 1,000 pages instead (app/db/setup.py sqlite_checkpoints_often)."""
    import peewee as pw

    monkeypatch.setattr(pw, "sqlite3", _BuggySqlite(pw.sqlite3))
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    try:
        assert WalCheckpoints().start()._thread is None
        assert db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        _write(5, "o")  # and it works
        assert Organization.select().count() == 5
    finally:
        db.close()


def test_with_a_sqlite_that_has_the_fix_the_thread_checkpoints(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    job = WalCheckpoints().start()
    try:
        assert job._thread is not None and job._thread.is_alive()
        assert db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == SQLITE_PRAGMAS["wal_autocheckpoint"]
    finally:
        job.stop()
        db.close()
