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
