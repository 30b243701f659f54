"""Opening the metadata database (SQLite by default, PostgreSQL at scale), migrating its schema,
transactions, and surviving lost PostgreSQL connections.

PostgreSQL (`BERTH_DATABASE_URL=postgresql://user:pass@host:5432/db?max_connections=32`) runs on
a connection pool: a request takes a connection on its first query and gives it back when it
ends (`ReleaseConnection`). A connection the server dropped (restart, failover,
`pg_terminate_backend`, a network cut) is replaced and the statement run again, when that is
safe: outside a transaction, or a whole transaction run by `atomically`.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlparse

import peewee as pw
from playhouse.db_url import connect, parse
from playhouse.pool import PooledPostgresqlDatabase

from app.db import migrations
from app.db.models import database
from app.oci.errors import CODES, RegistryError

log = logging.getLogger("berth.db")
T = TypeVar("T")

SQLITE_PRAGMAS = {
    # First: switching a new database to WAL takes a lock that another process may hold.
    "busy_timeout": 30_000,
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    # Per connection, and waitress keeps one per worker thread: 4 MiB each bounds the total.
    "cache_size": -4_000,
    "mmap_size": 256 * 1024 * 1024,
}

POSTGRES_SCHEMES = ("postgres", "postgresql", "postgres+pool", "postgresql+pool")
# Pool and connection defaults; every one can be overridden in the URL's query string.
POSTGRES_DEFAULTS = {
    "max_connections": 32,  # per process; at least BERTH_THREADS plus a few for background work
    "stale_timeout": 300,  # seconds: older connections are closed when handed back
    "timeout": 30,  # seconds a request waits for a free pooled connection before failing
    "connect_timeout": 5,
    "keepalives": 1,  # notice a dead server or network path on idle connections
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "application_name": "berth",
}
CONNECT_RETRY_DELAYS = (0.1, 0.3, 0.6, 1.0, 2.0, 3.0)  # ~7 s: a PostgreSQL restart or failover


def _is_driver_operational_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "OperationalError"


CODES.setdefault("UNAVAILABLE", (503, "the service is unavailable; retry later"))
STATEMENT_ATTEMPTS = 3


class DatabaseUnavailable(RegistryError):
    """The database connection was lost where the work could not simply be run again (inside a
    transaction, or on every attempt): 503, the client retries."""

    def __init__(self, message: str = "the database connection was lost; retry") -> None:
        super().__init__("UNAVAILABLE", message, headers={"Retry-After": "1"})


class PostgresDatabase(PooledPostgresqlDatabase):
    """PostgreSQL through peewee's pool, replacing connections the server dropped."""

    def _connect(self):
        for delay in (*CONNECT_RETRY_DELAYS, None):
            try:
                return super()._connect()
            except Exception as exc:  # the driver's own OperationalError: refused, starting up, ...
                if not _is_driver_operational_error(exc):
                    raise
                if delay is None:
                    raise DatabaseUnavailable("the database cannot be reached; retry") from exc
                log.warning("connecting to PostgreSQL failed (%s); retrying in %.1fs", str(exc).strip(), delay)
                time.sleep(delay)

    def _is_closed(self, conn) -> bool:
        # No round trip on every checkout: a connection that died idle in the pool fails on its
        # first statement, which `execute_sql`/`begin` below then retry on a new one.
        return bool(conn.closed) or self._adapter.txn_status(conn) == self._adapter.txn_unknown

    def connection_lost(self) -> bool:
        """Whether this thread's connection is gone (the server or network dropped it)."""
        conn = self._state.conn
        return conn is not None and self._is_closed(conn)

    def discard_connection(self) -> None:
        """Drop this thread's (dead) connection; the next statement checks out another."""
        if not self.is_closed() and not self.in_transaction():
            self.manual_close()

    def _retry_lost(self, run: Callable[[], T]) -> T:
        for attempt in range(1, STATEMENT_ATTEMPTS + 1):
            try:
                return run()
            except (pw.OperationalError, pw.InterfaceError) as exc:
                if not self.connection_lost():
                    raise
                # What dropped this connection (a restart, failover, a network cut) most likely
                # dropped the idle ones too: do not hand those out next.
                self.close_idle()
                if self.in_transaction():
                    # The work so far went with the connection: only the transaction as a whole
                    # can be run again (`atomically` does; elsewhere the client retries on 503).
                    raise DatabaseUnavailable("the database connection was lost mid-transaction; retry") from exc
                self.discard_connection()
                if attempt == STATEMENT_ATTEMPTS:
                    raise DatabaseUnavailable() from exc
                log.warning("PostgreSQL connection lost; running the statement again on a new connection")
                time.sleep(0.02 * (attempt - 1))
        raise AssertionError("unreachable")

    def execute_sql(self, sql, params=None):
        return self._retry_lost(lambda: super(PostgresDatabase, self).execute_sql(sql, params))

    def begin(self, *args, **kwargs):
        return self._retry_lost(lambda: super(PostgresDatabase, self).begin(*args, **kwargs))

    def commit(self):
        try:
            return super().commit()
        except (pw.OperationalError, pw.InterfaceError) as exc:
            if self.connection_lost():
                raise DatabaseUnavailable("the database connection was lost at commit; retry") from exc
            raise

    def rollback(self):
        if self.connection_lost():
            return  # the server ended the transaction with the connection
        return super().rollback()


def database_for(url: str) -> pw.Database:
    """A peewee database for `url`, not yet bound to the models."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    if scheme in POSTGRES_SCHEMES:
        kwargs = {**POSTGRES_DEFAULTS, **parse(url, unquote_password=True, unquote_user=True)}
        name = kwargs.pop("database")
        if not name:
            raise SystemExit(f"BERTH_DATABASE_URL {_redacted(url)} names no database (postgresql://host/dbname)")
        return PostgresDatabase(name, **kwargs)
    raise SystemExit(f"BERTH_DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")


def open_database(url: str, migrate: bool = True) -> pw.Database:
    """Bind the models to the database at `url` and bring its schema up to date."""
    db = database_for(url)
    database.initialize(db)
    if migrate:
        migrations.migrate(db)
        with db.connection_context():
            missing = migrations.missing_columns(db)
        if missing:
            log.error("the models need %s, which no migration creates: add one (app/db/migrations)", missing)
    return db


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def is_postgres() -> bool:
    return isinstance(database.obj, pw.PostgresqlDatabase)


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


def serialize(name: str) -> None:
    """Inside a transaction: wait until no other transaction (in any replica) that called
    `serialize` with the same name is open, and keep them waiting until this one ends. For
    check-then-insert steps such as the first-start bootstrap. PostgreSQL: a transaction-level
    advisory lock; SQLite: nothing to do, `transaction()` already holds the write lock."""
    db = database.obj
    if isinstance(db, pw.PostgresqlDatabase):
        if not db.in_transaction():
            raise RuntimeError("serialize() needs a transaction")
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(name.encode()),))


def blob_lock(registry_id: int, digest: str) -> str:
    """The `serialize` name that guards one blob's bytes and row (uploads and collection)."""
    return f"blob:{registry_id}:{digest}"


def repository_lock(repository_id: int) -> str:
    """The `serialize` name that guards a repository's manifests and tags (pushes, deletes,
    collection)."""
    return f"repository:{repository_id}"


RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, DatabaseUnavailable):
        return True
    cause = exc.args[0] if exc.args else None
    code = getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)
    return code in RETRYABLE_SQLSTATES


def atomically(fn: Callable[[], T], attempts: int = 3) -> T:
    """Run `fn` in a transaction; on PostgreSQL, run it again as a whole (a new transaction, on
    a new connection if need be) when the connection was lost, or on a deadlock or serialization
    failure. `fn` must only touch the database, so that running it twice is the same as once.
    Inside an enclosing transaction it simply runs: the outermost one decides."""
    db = database.obj
    if db.in_transaction():
        return fn()
    for attempt in range(1, attempts + 1):
        try:
            with transaction():
                return fn()
        except (pw.OperationalError, pw.InterfaceError, DatabaseUnavailable) as exc:
            if attempt == attempts or not _retryable(exc):
                raise
            log.warning("transaction failed (%s); running it again (attempt %d)", str(exc).strip(), attempt + 1)
            if isinstance(db, PostgresDatabase) and db.connection_lost():
                db.discard_connection()
            time.sleep(random.uniform(0, 0.05 * attempt))
    raise AssertionError("unreachable")


def release_connection() -> None:
    """Hand this thread's pooled connection back (a no-op on SQLite, whose per-thread
    connections stay open)."""
    db = database.obj
    if isinstance(db, PostgresDatabase) and not db.is_closed() and not db.in_transaction():
        db.close()


class ReleaseConnection:
    """Falcon middleware: a request's pooled database connection goes back to the pool when the
    response is ready (first in the middleware list, so its process_response runs last)."""

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        try:
            release_connection()
        except Exception:  # never fail a response over giving a connection back
            log.exception("releasing the database connection failed")
