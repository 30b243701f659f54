"""The unit tests' databases: a real SQLite file per test, migrated, closed at the end; a fresh
database on the real PostgreSQL (`pg`); and what a thread sent to either (`messages`)."""

from __future__ import annotations

import threading

import peewee as pw
import pytest

from app.db.setup import open_database
from tests.support import postgres


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield db
    db.close()


@pytest.fixture
def pg():
    """A fresh database on the real PostgreSQL, bound to the models: (database, its URL)."""
    url = postgres.create_database()
    db = open_database(url)
    yield db, url
    db.close()


@pytest.fixture
def messages(monkeypatch):
    """What each message this thread sent to the database held, in order: what
    `peewee.Database.execute_sql` (the driver call under Berth's PostgresDatabase; SQLite's
    statements too) is given. On PostgreSQL each call is one simple-query message to the server."""
    sent: list[str] = []
    me = threading.get_ident()
    original = pw.Database.execute_sql

    def recording(self, sql, params=None):
        if threading.get_ident() == me:
            sent.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(pw.Database, "execute_sql", recording)
    return sent
