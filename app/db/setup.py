"""Opening the metadata database (SQLite by default, PostgreSQL at scale), migrating its schema,
transactions, and surviving lost PostgreSQL connections.

PostgreSQL (`BERTH_DATABASE_URL=postgresql://user:pass@host:5432/db?max_connections=32`) runs on
a connection pool: a request takes a connection on its first query and gives it back when it
ends (`ReleaseConnection`). A connection the server dropped (restart, failover,
`pg_terminate_backend`, a network cut) is replaced and the statement run again, when that is
safe: outside a transaction, or a whole transaction run by `atomically`.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import peewee as pw
from playhouse.db_url import connect, parse
from playhouse.pool import MaxConnectionsExceeded, PoolConnection, PooledPostgresqlDatabase

from app.db import migrations
from app.db.circuit import ConnectCircuit
from app.db.models import database
from app.db.writer import Turnstile, WriterBusy
from app.db.writer import patience as writer_patience
from app.spec.errors import RegistryError

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
    # A server copies the log back on a thread of its own (app/services/wal_checkpoints.py); a
    # commit does it only past this many pages (~40 MB), which that thread keeps the log below.
    "wal_autocheckpoint": 10_000,
}

POSTGRES_SCHEMES = ("postgres", "postgresql", "postgres+pool", "postgresql+pool")
# Pool and connection defaults; every one can be overridden in the URL's query string.
POSTGRES_DEFAULTS = {
    "max_connections": 32,  # per process; at least BERTH_THREADS plus a few for background work
    "stale_timeout": 300,  # seconds: older connections are closed when handed back
    "timeout": 30,  # seconds a request waits for a free pooled connection before failing
    "connect_timeout": 2,  # libpq's least: an unreachable server costs a request at most this
    "keepalives": 1,  # notice a dead server or network path on idle connections
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    # ... and on busy ones: a statement whose bytes the server's host stops acknowledging fails
    # after this many milliseconds instead of waiting out TCP's retransmissions (~15 minutes).
    "tcp_user_timeout": 10_000,
    "application_name": "berth",
}
# A request that cannot connect tries again after these pauses, for at most CONNECT_BUDGET
# seconds in all (a server still starting, a connection cut during its handshake); then it is
# answered 503 and the circuit opens: for CIRCUIT_OPEN_FOR seconds the others fail fast too.
CONNECT_RETRY_DELAYS = (0.05, 0.2, 0.5)
CONNECT_BUDGET = 1.0
CIRCUIT_OPEN_FOR = 1.0
# A statement outside a transaction whose connection was cut is run again on a new connection,
# at most this many times, while the first attempt is less than this many seconds old.
STATEMENT_ATTEMPTS = 6
STATEMENT_BUDGET = 2.0


def _is_driver_operational_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "OperationalError"


class DatabaseUnavailable(RegistryError, pw.OperationalError):
    """The database cannot be reached, or the connection was lost where the work could not
    simply be run again (inside a transaction, or on every attempt): 503, the client retries.
    Also a peewee OperationalError, so that background work which shrugs off database errors
    (audit records, usage counters, lease renewals) shrugs off this one too."""

    def __init__(self, message: str = "the database connection was lost; retry", retry_after: int = 1) -> None:
        RegistryError.__init__(self, "UNAVAILABLE", message, headers={"Retry-After": str(retry_after)})


# A check that rows this process kept are unchanged fails with this error, which names it.
ROW_CHANGED = ("22P02", "berth: a kept row changed")
_row_checks: dict[tuple[str, ...], tuple[str, tuple[str, str]]] = {}


def _row_check(tables: tuple[str, ...]) -> tuple[str, tuple[str, str]]:
    """(SQL with %s, (prepared statement name, SQL with $n)) of a statement that fails unless each
    row (id, xmin as text: two parameters per table, in order) is as kept. It fails by turning a
    text into an integer: `int4('0')` when every row is as kept, else `int4` of the words of
    ROW_CHANGED, which cannot be one. The cast is of the CASE's outcome, so it is made when the
    statement runs, never when it is planned (a constant error in a CASE branch could be).
    Plain SQL, no function: the least work for the server (measured: a PL/pgSQL function cost
    it about twice as much per request)."""
    found = _row_checks.get(tables)
    if found is None:
        conditions = " AND ".join(f'EXISTS (SELECT 1 FROM "{t}" WHERE id = %s AND xmin::text = %s)' for t in tables)
        sql = f"SELECT int4(CASE WHEN {conditions} THEN '0' ELSE '{ROW_CHANGED[1]}' END)"
        found = _row_checks[tables] = (sql, ("berth_kept_" + "_".join(tables), numbered_parameters(sql)))
    return found


def numbered_parameters(sql: str) -> str:
    """`sql` with $1, $2... for its %s placeholders, as a PostgreSQL prepared statement takes
    them (`sql` holds no literal %)."""
    parts = sql.split("%s")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


class RowChanged(Exception):
    """A row this process kept (app/db/checked.py) and a request used has changed in the
    database: raised by the request's next statement, which did not run."""


class _OpenOne(Exception):
    """Raised inside peewee's connect (under its locks) to leave them and open a connection."""


class PostgresDatabase(PooledPostgresqlDatabase):
    """PostgreSQL through peewee's pool, replacing connections the server dropped.

    peewee opens a new connection under a process-wide lock (and the pool's): one slow or
    refused connect would hold up every thread, even those with a pooled connection to take.
    Here `connect` opens it first, with no lock held, and `_connect` (under the locks) only hands
    out a pooled or an already opened connection."""

    def __init__(self, database, *, server_prepare: bool = True, **kwargs) -> None:
        self.server_prepare = server_prepare  # execute_prepared: PREPARE once per connection
        self._prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> names
        self._checkout = threading.local()  # .opened: a connection opened for this thread; .fresh
        self._deferred = _Deferred()  # this thread's statements waiting for the next round trip
        self._bounded = threading.local()  # .ms: `bound_statements` for this thread
        self._timeouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> ms
        self._opening = 0  # connections being opened outside the pool lock: they count as in use
        connect_timeout = float(kwargs.get("connect_timeout") or 2)
        self.circuit = ConnectCircuit(open_for=CIRCUIT_OPEN_FOR, probe_for=max(connect_timeout, 2) + 1)
        super().__init__(database, **kwargs)

    def connect(self, reuse_if_open=False):
        try:
            while True:
                try:
                    return super().connect(reuse_if_open)
                except _OpenOne:
                    self._checkout.opened = self._open_connection()
        finally:
            self._checkout.fresh = False
            leftover = getattr(self._checkout, "opened", None)
            if leftover is not None:  # connect failed after opening one: it never entered the pool
                self._checkout.opened = None
                self._unreserve()
                self._close_raw(leftover)

    def _connect(self):
        with self._pool_lock:
            opened = getattr(self._checkout, "opened", None)
            if opened is not None:
                self._checkout.opened = None
                self._opening -= 1
                self._in_use[self.conn_key(opened)] = PoolConnection(time.time(), opened, time.time())
                return opened
            if not getattr(self._checkout, "fresh", False):
                while self._connections:
                    timestamp, _, conn = heapq.heappop(self._connections)
                    if self._is_closed(conn):
                        continue
                    if self._stale_timeout and self._is_stale(timestamp):
                        self._close_raw(conn)
                        continue
                    self._in_use[self.conn_key(conn)] = PoolConnection(timestamp, conn, time.time())
                    return conn
            if self._max_connections and len(self._in_use) + self._opening >= self._max_connections:
                raise MaxConnectionsExceeded("Exceeded maximum connections.")
            self._opening += 1  # a reservation, kept until the opened connection is handed over
            raise _OpenOne

    def _unreserve(self) -> None:
        with self._pool_lock:
            self._opening -= 1
            self._pool_available.notify()

    def _open_connection(self):
        """A new driver connection, or DatabaseUnavailable within about CONNECT_BUDGET seconds
        (plus one connect_timeout at worst). No lock is held here."""
        started = time.monotonic()
        try:
            for delay in (*CONNECT_RETRY_DELAYS, None):
                if not self.circuit.admit():
                    raise DatabaseUnavailable(
                        "the database cannot be reached; retry", retry_after=self.circuit.retry_after()
                    )
                probing = self.circuit.is_open
                try:
                    conn = pw.PostgresqlDatabase._connect(self)
                except Exception as exc:  # the driver's own OperationalError: refused, starting up, ...
                    if not _is_driver_operational_error(exc):
                        raise
                    # The probe of an open circuit tries once; others until their budget is spent.
                    if probing or delay is None or time.monotonic() - started + delay > CONNECT_BUDGET:
                        self.circuit.failed()
                        raise DatabaseUnavailable(
                            "the database cannot be reached; retry", retry_after=self.circuit.retry_after()
                        ) from exc
                    log.info("connecting to PostgreSQL failed (%s); retrying in %.2fs", str(exc).strip(), delay)
                    time.sleep(delay)
                else:
                    self.circuit.succeeded()
                    return conn
        except BaseException:
            self._unreserve()
            raise
        raise AssertionError("unreachable")

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

    def _retry_lost(self, run: Callable[[], T], unsent: bool = False, commits: bool = False) -> T:
        """`run()`, again on a new connection when the connection was lost and that is safe:
        outside a transaction, or (`unsent`) inside one none of whose statements reached the
        server before this attempt (its BEGIN travels with this one); never when `run` commits
        (the server may have committed before the connection went)."""
        started = time.monotonic()
        for attempt in range(1, STATEMENT_ATTEMPTS + 1):
            try:
                return run()
            except (pw.OperationalError, pw.InterfaceError) as exc:
                if isinstance(exc, DatabaseUnavailable) or not self.connection_lost():
                    raise
                # What dropped this connection (a restart, failover, a network cut) most likely
                # dropped the idle ones too: do not hand those out next.
                self.close_idle()
                if commits:
                    raise DatabaseUnavailable("the database connection was lost at commit; retry") from exc
                if self.in_transaction() and not unsent:
                    # The work so far went with the connection: only the transaction as a whole
                    # can be run again (`atomically` does; elsewhere the client retries on 503).
                    raise DatabaseUnavailable("the database connection was lost mid-transaction; retry") from exc
                if attempt == STATEMENT_ATTEMPTS or time.monotonic() - started > STATEMENT_BUDGET:
                    self.discard_connection()
                    raise DatabaseUnavailable() from exc
                log.warning("PostgreSQL connection lost; running the statement again on a new connection")
                time.sleep(0.01 * (attempt - 1))
                # A new connection, not another pooled one: requests that end hand back
                # connections that died with this one, and nothing tells them apart unasked.
                self._replace_connection()
        raise AssertionError("unreachable")

    def _replace_connection(self) -> None:
        """Drop this thread's dead connection and open a new one in its place, keeping what peewee
        knows of the thread's transactions (none of which reached the server: see `_retry_lost`)."""
        state = self._state
        kept = (state.ctx, state.transactions, state.commit_callbacks)
        conn = state.conn
        if conn is not None:
            with self._pool_lock:
                self._in_use.pop(self.conn_key(conn), None)
            self._close_raw(conn)
        state.closed, state.conn = True, None
        self._checkout.fresh = True
        try:
            self.connect()
        finally:
            state.ctx, state.transactions, state.commit_callbacks = kept

    def execute_sql(self, sql, params=None):
        return self._send(sql, params)

    def execute_prepared(self, name: str, sql: str, params):
        """Run `sql` (with $1... placeholders) as the server-side prepared statement `name`,
        preparing it first on a connection that has not seen it: the server then parses and plans
        it once per connection instead of on every call (most of what a short statement costs
        it). PREPARE is not undone by a rollback; a connection replaced by `_retry_lost` prepares
        again."""
        return self._send(execute_text(name, params), params, (name, sql))

    def defer(self, sql: str, params=(), prepared: tuple[str, str] | None = None) -> None:
        """Run `sql` for its effect only: inside a transaction it is held back and sent to the
        server in one message with the next statement whose result is read (or with COMMIT), a
        round trip fewer for each. Its error, if any, is raised there. For statements whose
        result and timing nothing depends on before that point: a write whose row count is not
        looked at, an advisory lock taken before the next statement. Outside a transaction it
        runs now. `prepared`: (name, $n SQL) to run it as `execute_prepared` does."""
        if not self.in_transaction():
            if prepared is not None:
                self.execute_prepared(prepared[0], prepared[1], params)
            else:
                self.execute_sql(sql, params)
            return
        self._deferred.statements.append((sql, params or (), prepared))

    def defer_check(self, table: str, row_id: int, version: str) -> None:
        """Hold back a check that the row `row_id` of `table`, which this process kept, is still
        the version `version` (app/db/checked.py), until this thread's next statement, in or out
        of a transaction: one check of every row held back goes first in that statement's
        message, so the statement runs only if they pass, and it then raises RowChanged instead.
        `settle_checks` sends any left."""
        self._deferred.checks.append((table, row_id, version))

    def settle_checks(self) -> None:
        """Send this thread's held-back checks now, if any (RowChanged if one fails)."""
        if self._deferred.checks:
            self._send("SELECT 1", ())

    def drop_checks(self) -> None:
        self._deferred.checks = []

    def _check_statement(self) -> list[tuple[str, tuple | list, tuple[str, str] | None]]:
        """The held-back checks as one statement (none if there are none)."""
        checks = self._deferred.checks
        if not checks:
            return []
        sql, server = _row_check(tuple(table for table, _, _ in checks))
        params = [v for _, row_id, version in checks for v in (row_id, version)]
        if self.server_prepare:
            return [(execute_text(server[0], params), params, server)]
        return [(sql, params, None)]

    def _send(self, sql: str, params, prepared: tuple[str, str] | None = None):
        """`sql` with the checks and statements deferred before it, in one message (the simple
        query protocol runs them in order and stops at the first error); the cursor holds `sql`'s
        result."""
        deferred = self._deferred
        # A message that carries the transaction's BEGIN can be sent again whole on a new
        # connection: the server ended the transaction with the old one. Not with its COMMIT,
        # which the server may have run before the connection went (the client retries on 503).
        commits = sql == "COMMIT"

        def run():
            statements = [*self._check_statement(), *deferred.statements, (sql, params or (), prepared)]
            connection = self.connection()
            bound = getattr(self._bounded, "ms", None)
            if bound is not None and self._timeouts.get(connection) != bound:
                # Its own message, before the transaction's BEGIN: a setting of the session.
                super(PostgresDatabase, self).execute_sql(f"SET statement_timeout = {int(bound)}")
                self._timeouts[connection] = bound
            names = self._prepared.get(connection)
            if names is None:
                names = self._prepared[connection] = set()
            for _, _, statement in statements:
                if statement is not None and statement[0] not in names:
                    super(PostgresDatabase, self).execute_sql(f"PREPARE {statement[0]} AS {statement[1]}")
                    names.add(statement[0])
            if len(statements) == 1:
                return super(PostgresDatabase, self).execute_sql(sql, params)
            text = "; ".join(s for s, _, _ in statements)
            return super(PostgresDatabase, self).execute_sql(text, [v for _, ps, _ in statements for v in ps])

        try:
            return self._retry_lost(run, unsent=deferred.began, commits=commits)
        except pw.DatabaseError as exc:
            if deferred.checks and _sqlstate(exc) == ROW_CHANGED[0] and ROW_CHANGED[1] in str(exc):
                raise RowChanged(str(exc).strip().splitlines()[0]) from exc
            raise
        finally:
            deferred.clear()
            deferred.checks = []

    def bound_statements(self, seconds: float) -> None:
        """From now on this thread (the event loop: `patience`) keeps its connection from request
        to request, and the server cancels any statement on it that runs longer than `seconds`
        (a lock wait included): set once per connection, which is never handed to another thread
        with the setting on it."""
        self._bounded.ms = max(1, int(seconds * 1000))

    def keeps_connection(self) -> bool:
        return getattr(self._bounded, "ms", None) is not None

    def begin(self, isolation_level=None):
        """Held back, not sent: BEGIN goes to the server with the transaction's first statement
        (`defer`), and a transaction that runs none costs no round trip at all."""
        if self.is_closed():
            self.connect()  # now: peewee's connect, run by a statement, would forget the transaction
        level = isolation_level or self._isolation_level
        begin = f"BEGIN TRANSACTION ISOLATION LEVEL {self._adapter.isolation_level_str(level)}" if level else "BEGIN"
        self._deferred.statements = [(begin, (), None)]
        self._deferred.began = True

    def commit(self):
        deferred = self._deferred
        if deferred.began and len(deferred.statements) == 1:
            deferred.clear()  # nothing was run: nothing to commit
            return None
        if deferred.statements:
            self._send("COMMIT", ())
            return None
        try:
            return super().commit()
        except (pw.OperationalError, pw.InterfaceError) as exc:
            if self.connection_lost():
                raise DatabaseUnavailable("the database connection was lost at commit; retry") from exc
            raise

    def rollback(self):
        unsent = self._deferred.began
        self._deferred.clear()
        if unsent or self.is_closed() or self.connection_lost():
            return  # never begun on the server, or the server ended it with the connection
        return super().rollback()


class _Deferred(threading.local):
    """One thread's statements held back by `PostgresDatabase.defer`: (SQL, parameters, the
    prepared statement's (name, SQL) or None). `began`: the first is the transaction's BEGIN.
    `checks`: (table, row id, version) held back by `defer_check`, checked before them; kept
    across a transaction's end (they are about the request, not the transaction) until a message
    carries them."""

    def __init__(self) -> None:
        self.clear()
        self.checks: list[tuple[str, int, str]] = []

    def clear(self) -> None:
        self.statements: list[tuple[str, tuple | list, tuple[str, str] | None]] = []
        self.began = False


def execute_text(name: str, params) -> str:
    """The EXECUTE statement that runs the prepared statement `name` with `params` (%s each)."""
    return f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}"


# SQLite's WAL-reset bug (https://sqlite.org/wal.html#walresetbug): in WAL mode, with two or
# more connections, a checkpoint that starts while another connection's commit restarts the log
# can miss the restart, and a later checkpoint then skips part of a transaction: committed writes
# are lost or the database corrupted. SQLite 3.7.0 to 3.51.2; fixed in 3.51.3 (and every later
# release), backported to 3.44.6 and 3.50.7. Berth's server is the pattern it needs: several
# connections (request threads, `--workers` processes) committing all the time, and a checkpoint
# every tenth of a second (app/services/wal_checkpoints.py). Seen here: a bench's populate step
# on Debian 12's SQLite 3.40.1 answered an upload's POST 202 and its PUT, in the other worker,
# 404, the session's row and several acknowledged publishes never in the database. So Berth
# installs pysqlite3 (a recent SQLite built in) where a wheel exists, and peewee runs SQLite
# with it (it takes pysqlite3 over the standard library's sqlite3 when its SQLite is no older).
SQLITE_WAL_RESET_FIXED = ((3, 51, 3), (3, 50, 7), (3, 44, 6))


def sqlite_has_wal_reset_fix(version: tuple[int, ...]) -> bool:
    """Whether the SQLite library `version` (major, minor, patch) has the WAL-reset bug's fix."""
    if version >= SQLITE_WAL_RESET_FIXED[0]:
        return True
    return any(fixed <= version < (fixed[0], fixed[1] + 1, 0) for fixed in SQLITE_WAL_RESET_FIXED[1:])


def sqlite_library() -> tuple[str, str]:
    """(the driver module peewee runs SQLite with, its SQLite library's version)."""
    driver = pw.sqlite3
    return driver.__name__, driver.sqlite_version


def sqlite_checkpoints_often() -> bool:
    """Whether a server copies SQLite's log back every tenth of a second on a thread of its own
    (app/services/wal_checkpoints.py), with commits checkpointing only past a high backstop:
    only with a library that has the WAL-reset fix. Without it, checkpoints that frequent make
    the bug's race far likelier (measured: lost commits within a minute); SQLite's own default
    (a commit checkpoints past 1,000 pages) is what it ran under, rarely hit, for years."""
    return sqlite_has_wal_reset_fix(pw.sqlite3.sqlite_version_info)


def sqlite_pragmas() -> dict:
    """SQLITE_PRAGMAS for the SQLite library in use (`sqlite_checkpoints_often`)."""
    if sqlite_checkpoints_often():
        return dict(SQLITE_PRAGMAS)
    return {**SQLITE_PRAGMAS, "wal_autocheckpoint": 1000}


def _warn_about_sqlite_library() -> None:
    driver = pw.sqlite3
    if not sqlite_has_wal_reset_fix(driver.sqlite_version_info):
        log.warning(
            "SQLite %s (through %s) has the WAL-reset bug (https://sqlite.org/wal.html#walresetbug), "
            "which can lose committed writes when several connections write and checkpoint: install "
            "pysqlite3>=0.6.1 (pip install 'pysqlite3>=0.6.1', a wheel with SQLite 3.53 built in, on "
            "x86_64 Linux) or a system SQLite of 3.51.3 or later, or use PostgreSQL. Until then the "
            "log is checkpointed as SQLite does by default, not every 0.1 s, which makes it rarer "
            "(and commits slower)",
            driver.sqlite_version,
            driver.__name__,
            extra={"sqlite_version": driver.sqlite_version},
        )


def database_for(url: str) -> pw.Database:
    """A peewee database for `url`, not yet bound to the models."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        _warn_about_sqlite_library()
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        db = connect(url, pragmas=sqlite_pragmas(), check_same_thread=False)
        path = db.database
        db.berth_writer = Turnstile(f"{path}-writer.lock" if path and path != ":memory:" else None)
        return db
    if scheme in POSTGRES_SCHEMES:
        kwargs = {**POSTGRES_DEFAULTS, **parse(url, unquote_password=True, unquote_user=True)}
        name = kwargs.pop("database")
        # ?server_prepare=off: no server-side prepared statements (a pooler in transaction mode
        # between Berth and PostgreSQL, such as PgBouncer's, cannot keep them per client).
        prepare = str(kwargs.pop("server_prepare", "on")).lower()
        if prepare not in ("on", "off", "true", "false", "1", "0"):
            raise SystemExit(f"BERTH_DATABASE_URL: server_prepare={prepare!r}: use on or off")
        kwargs["server_prepare"] = prepare in ("on", "true", "1")
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


def ping() -> None:
    """One round trip to the database (readiness); raises what the driver raises when it cannot."""
    database.obj.execute_sql("SELECT 1").fetchone()


@contextmanager
def transaction():
    """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so
    concurrent writers queue instead of failing on lock upgrade, and they queue in this machine's
    writer turnstile (app/db/writer.py) rather than in SQLite's sleeping busy handler."""
    db = database.obj
    if isinstance(db, pw.SqliteDatabase):
        turnstile = getattr(db, "berth_writer", None)  # app/db/writer.py
        if turnstile is not None:
            try:
                with turnstile.turn(), db.atomic("IMMEDIATE"):
                    yield
            except WriterBusy:
                raise DatabaseUnavailable("the database is busy with other writes; retry") from None
        else:
            with db.atomic("IMMEDIATE"):
                yield
    else:
        with db.atomic():
            yield


_busy_timeout = threading.local()  # .connection and .ms: what this thread's SQLite connection was set to


@contextmanager
def patience(seconds: float):
    """Within this block this thread waits at most `seconds` to write: for a write turn
    (app/db/writer.py) and, on SQLite, for SQLite's own lock (its busy timeout on this thread's
    connection, set once per connection: the thread that asks, the event loop, always asks the
    same). On PostgreSQL, any statement of this thread is cancelled past `seconds`, from now on
    (`PostgresDatabase.bound_statements`). For the event loop, which serves every connection of
    its process."""
    db = database.obj
    if isinstance(db, pw.SqliteDatabase):
        connection = db.connection()
        wanted = max(1, int(seconds * 1000))
        if getattr(_busy_timeout, "connection", None) is not connection or _busy_timeout.ms != wanted:
            db.execute_sql(f"PRAGMA busy_timeout = {wanted}")
            _busy_timeout.connection, _busy_timeout.ms = connection, wanted
    elif isinstance(db, PostgresDatabase):
        db.bound_statements(seconds)
    with writer_patience(seconds):
        yield


def serialize(name: str, *, shared: bool = False, deferred: bool = False) -> None:
    """Inside a transaction: wait until no other transaction (in any replica) that called
    `serialize` with the same name is open, and keep them waiting until this one ends. For
    check-then-insert steps such as the first-start bootstrap. With `shared`, only transactions
    that took the name without `shared` are excluded (and exclude it): pushes into a repository
    run side by side, its garbage collection waits for them all. With `deferred`, the wait happens
    with the transaction's next statement (`PostgresDatabase.defer`): only for a caller whose
    next step is a statement, not work outside the database that the lock must cover.
    PostgreSQL: a transaction-level advisory lock; SQLite: nothing to do, `transaction()` already
    holds the write lock."""
    db = database.obj
    if isinstance(db, pw.PostgresqlDatabase):
        if not db.in_transaction():
            raise RuntimeError("serialize() needs a transaction")
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        _lock(db, f"SELECT {function}(%s)", (zlib.crc32(name.encode()),), deferred)


def commit_without_flush() -> None:
    """Inside a transaction: its COMMIT returns without waiting for the database to flush it to
    disk. For writes that acknowledge nothing a crash must keep: an upload chunk's new offset,
    whose bytes are not synced either until the closing PUT (a blob is acknowledged only then,
    fsynced and committed in full). Lost to a crash of the database server's machine (or of the
    server itself, its last fraction of a second), the offset goes back to the last one flushed,
    with its hash state in the same row; the next chunk truncates the file there
    (`open_upload_for_append`), and a client that asks (GET on the upload) resumes from it.
    PostgreSQL: `SET LOCAL synchronous_commit TO off`, held back to travel with the next statement
    (on this machine's 2 CPUs and one disk, a chunk's COMMIT waited behind the chunk's own
    writeback: ~260 ms of a 64 MiB PATCH's ~370). SQLite: nothing to do, a commit there never
    waits for the disk (WAL, synchronous=normal)."""
    db = database.obj
    if isinstance(db, PostgresDatabase):
        if not db.in_transaction():
            raise RuntimeError("commit_without_flush() needs a transaction")
        db.defer("SET LOCAL synchronous_commit TO off")


def serialize_tags(repository_id: int, tags: list[str], *, deferred: bool = False) -> None:
    """Inside a transaction: writers of the same tag of a repository in turn (a tag push reads
    what the tag pointed at, then moves it). Taken after the repository's lock, in name order,
    so that two pushes naming the same tags never wait for each other crosswise. PostgreSQL: an
    advisory lock per tag, keyed (repository, tag) apart from `serialize`'s names; SQLite: nothing
    to do, as for `serialize`. `deferred` as for `serialize`."""
    db = database.obj
    if isinstance(db, pw.PostgresqlDatabase):
        if not db.in_transaction():
            raise RuntimeError("serialize_tags() needs a transaction")
        for tag in sorted(set(tags)):
            # Two int4 keys: a key space apart from serialize's single bigint keys.
            key = zlib.crc32(tag.encode()) - 2**31
            _lock(db, "SELECT pg_advisory_xact_lock(%s, %s)", (repository_id % 2**31, key), deferred)


def _lock(db: pw.Database, sql: str, params: tuple, deferred: bool) -> None:
    defer = getattr(db, "defer", None)
    if deferred and defer is not None:
        defer(sql, params)
    else:
        db.execute_sql(sql, params)


def blob_lock(registry_id: int, digest: str) -> str:
    """The `serialize` name that guards one blob's bytes and row (uploads and collection)."""
    return f"blob:{registry_id}:{digest}"


def repository_lock(repository_id: int) -> str:
    """The `serialize` name that guards a repository's manifests and tags (pushes, deletes,
    collection)."""
    return f"repository:{repository_id}"


RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def is_cancelled(exc: BaseException) -> bool:
    """A PostgreSQL statement the server cancelled for running past its statement timeout
    (`patience`): the database was too slow for the request, not wrong."""
    return _sqlstate(exc) == "57014"


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver's error under a peewee exception (peewee keeps it as `orig`;
    older peewee as its first argument), or None."""
    cause = getattr(exc, "orig", None) or (exc.args[0] if exc.args else None)
    return getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, DatabaseUnavailable):
        return True
    return _sqlstate(exc) in RETRYABLE_SQLSTATES


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
    if (
        isinstance(db, PostgresDatabase)
        and not db.is_closed()
        and not db.in_transaction()
        and not db.keeps_connection()
    ):
        db.close()


def end_transaction_left_open(where: str) -> bool:
    """Roll back a transaction this thread left open, if any, and say so (True). No request and
    no background turn may end inside a transaction: every one is a `with` block that commits
    or rolls back as it ends. One left open by a defect would take in, on this thread's
    connection, the writes of every request the thread serves next, each answered as done
    though nothing of it is committed, until something rolls it all back; on SQLite it would
    also hold the write lock from every other thread and process meanwhile. Checked where a
    request ends (`ReleaseConnection`) and after each background turn (app/services/
    periodic.py): what the open transaction held is undone, and the request that left it is
    answered 503 (retry) instead of as done. Logged as an error, with `where`."""
    db = database.obj
    if db is None or db.is_closed():
        return False
    stack = db.transaction_depth()
    driver_open = False
    turnstile = getattr(db, "berth_writer", None)  # SQLite's (app/db/writer.py)
    if isinstance(db, pw.SqliteDatabase):
        driver_open = bool(getattr(db.connection(), "in_transaction", False))
    if not stack and not driver_open:
        if turnstile is not None and turnstile.release_held():
            log.error("a write turn was left taken by %s; given back", where)
            return True
        return False
    log.error(
        "a database transaction was left open by %s (%d level(s) open); rolling it back",
        where,
        stack,
        extra={"transactions_left_open": stack or 1},
    )
    try:
        db.rollback()
        rolled_back = True
    except Exception:  # noqa: BLE001 - closing the connection below ends it all the same
        log.exception("rolling back the transaction left open by %s failed", where)
        rolled_back = False
    while db.in_transaction():
        db.pop_transaction()
    if not rolled_back:
        db.close()
    if turnstile is not None:
        turnstile.release_held()
    return True


class ReleaseConnection:
    """Falcon middleware: a request's pooled database connection goes back to the pool when the
    response is ready (first in the middleware list, so its process_response runs last). A
    transaction the request left open is rolled back first, and the request answered 503
    (`end_transaction_left_open`): never as done with its changes uncommitted."""

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if end_transaction_left_open(f"{req.method} {req.path[:200]}"):
            raise DatabaseUnavailable("the request's changes could not be committed; retry")
        try:
            release_connection()
        except Exception:  # never fail a response over giving a connection back
            log.exception("releasing the database connection failed")
