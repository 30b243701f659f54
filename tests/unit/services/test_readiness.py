"""app/services/readiness.py: what /readyz reports, on a real SQLite database and filesystem store."""

from __future__ import annotations

from app.db.models import database as proxy
from app.services import readiness
from app.storage import open_store
from app.storage.capacity import FreeSpace


def test_everything_answers(database, tmp_path):
    store = open_store(f"file://{tmp_path / 'storage'}")
    assert readiness.checks(store, FreeSpace([tmp_path], 1)) == {"database": "ok", "storage": "ok", "disk": "ok"}
    assert readiness.checks(store) == {"database": "ok", "storage": "ok"}


def test_a_closed_database_and_a_full_disk_are_named(database, tmp_path):
    store = open_store(f"file://{tmp_path / 'storage'}")
    proxy.close()
    proxy.initialize(None)  # no database behind the models: as good as unreachable
    try:
        result = readiness.checks(store, FreeSpace([tmp_path], 1 << 62))
    finally:
        proxy.initialize(database)
    assert result["database"].startswith("unavailable: ")
    assert result["storage"] == "ok"
    assert result["disk"] != "ok" and str(tmp_path) in result["disk"]
