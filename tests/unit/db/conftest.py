"""Fixtures of the database tests."""

from __future__ import annotations

import pytest

from app.db.setup import open_database
from tests.support import postgres


@pytest.fixture
def pg():
    """A fresh database on the real PostgreSQL, bound to the models: (database, its URL)."""
    url = postgres.create_database()
    db = open_database(url)
    yield db, url
    db.close()
