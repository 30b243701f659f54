"""The unit tests' database: a real SQLite file per test, migrated, closed at the end."""

from __future__ import annotations

import pytest

from app.db.setup import open_database


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield db
    db.close()
