"""Opening the metadata database (SQLite by default) and creating its schema."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import peewee as pw
from playhouse.db_url import connect

from app.db.models import ALL_MODELS, database

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 30_000,
    # Per connection, and waitress keeps one per worker thread: 4 MiB each bounds the total.
    "cache_size": -4_000,
}


def open_database(url: str) -> pw.Database:
    """Bind the models to the database at `url` and create missing tables."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        db = connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    else:
        db = connect(url)
    database.initialize(db)
    with db.connection_context():
        db.create_tables(ALL_MODELS, safe=True)
    return db


@contextmanager
def transaction():
    """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so
    concurrent writers queue on busy_timeout instead of failing on lock upgrade."""
    db = database.obj
    if isinstance(db, pw.SqliteDatabase):
        with db.atomic("IMMEDIATE"):
            yield
    else:
        with db.atomic():
            yield
