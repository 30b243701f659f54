"""Hot-path queries compiled to SQL once and re-run with new parameters.

Building SQL is most of what peewee costs per query (about 0.7 ms here), which on a manifest
GET was most of the request, and on a manifest PUT (a dozen statements) most of its CPU. A
`Prepared` query is written as an ordinary peewee query (a select, insert, update or upsert)
over placeholder arguments; it is compiled once per database and then executed directly.
`PreparedFamily` does the same for a query whose shape depends on a count (an `IN` list, a
multi-row insert): one compiled statement per count, up to a bound.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable

import peewee as pw

from app.db.models import database
from app.db.setup import execute_text as _execute_text
from app.db.setup import numbered_parameters

_INT_BASE = 7_301_000_000_000


class Prepared:
    every: list[Prepared] = []

    def __init__(
        self, build: Callable[..., pw.Query], kinds: str, model: type[pw.Model] | None = None, *, at_start: bool = True
    ) -> None:
        """`kinds` gives each argument's type, in order: "i" (integer), "s" (a string, or any value
        the driver takes as it is: a datetime, None) or "b" (bytes, for a BlobField)."""
        self._build = build
        self._kinds = kinds
        self._model = model
        self._compiled: dict[int, tuple[str, list[int]]] = {}
        self._server: dict[int, tuple[str, str]] = {}  # PostgreSQL: (statement name, $n SQL)
        self._lock = threading.Lock()
        if at_start:  # compiled by compile_all; else on first use
            Prepared.every.append(self)

    @classmethod
    def compile_all(cls) -> None:
        """Compile every hot-path query for the bound database now (at start, before `--workers`
        fork, so each worker inherits them) rather than in the first request of each."""
        for prepared in cls.every:
            prepared._sql()

    def _sql(self) -> tuple[str, list[int]]:
        db = database.obj
        compiled = self._compiled.get(id(db))
        if compiled is None:
            sentinels = [_sentinel(i, k) for i, k in enumerate(self._kinds)]
            sql, params = self._build(*sentinels).sql()
            order = [sentinels.index(_unwrapped(p)) for p in params]  # every parameter must be an argument
            compiled = (sql, order)
            with self._lock:
                self._compiled[id(db)] = compiled
        return compiled

    def cursor(self, *args):
        db = database.obj
        sql, params, server = self._bound(db, args)
        if server is not None:
            return db.execute_prepared(server[0], server[1], params)
        return db.execute_sql(sql, params)

    def send(self, *args) -> None:
        """Run for its effect only (neither rows nor a row count are read): on PostgreSQL, inside
        a transaction, it goes to the server with the next statement or the commit
        (`PostgresDatabase.defer`), a round trip fewer."""
        db = database.obj
        defer = getattr(db, "defer", None)
        if defer is None:
            self.cursor(*args)
            return
        sql, params, server = self._bound(db, args)
        if server is not None:
            defer(_execute_text(server[0], params), params, server)
        else:
            defer(sql, params)

    def _bound(self, db, args: tuple) -> tuple[str, list, tuple[str, str] | None]:
        """The compiled SQL, `args` in its parameters' order, and the (name, $n SQL) of its
        PostgreSQL server-side prepared statement, or None when `db` does not prepare statements
        (SQLite, `?server_prepare=off`) or cannot this one."""
        sql, order = self._sql()
        params = [args[i] for i in order]
        if not getattr(db, "server_prepare", False):  # app/db/setup.py PostgresDatabase
            return sql, params, None
        server = self._server.get(id(db))
        if server is None:
            server = self._server[id(db)] = _server_statement(sql)
        return sql, params, server if server[1] else None

    def rows(self, *args) -> list[tuple]:
        return self.cursor(*args).fetchall()

    def first(self, *args):
        """The first row as a model instance (when built with `model`), or None."""
        rows = self.rows(*args)
        if not rows:
            return None
        return to_model(self._model, rows[0]) if self._model else rows[0]


class PreparedFamily:
    """`Prepared` queries whose shape depends on counts (an `IN` list, a multi-row insert, parts
    of a union): `build(*counts)` returns the query builder for those counts and `kinds(*counts)`
    its argument kinds. Compiled per counts up to `largest` each; beyond it each call is built by
    peewee as usual (rare, and bounded memory)."""

    def __init__(self, build: Callable[..., Callable[..., pw.Query]], kinds: Callable[..., str], largest: int = 64):
        self._build = build
        self._kinds = kinds
        self._largest = largest
        self._members: dict[tuple[int, ...], Prepared] = {}

    def of(self, *counts: int) -> Prepared:
        member = self._members.get(counts)
        if member is None:
            member = Prepared(self._build(*counts), self._kinds(*counts), at_start=False)
            if max(counts) <= self._largest:
                self._members[counts] = member
        return member


_names = itertools.count(1)


def _server_statement(sql: str) -> tuple[str, str]:
    """(a name, the SQL with $1, $2... for %s) for a PostgreSQL prepared statement; an empty SQL
    when the statement holds a literal % (an escaped %%), which the simple rewrite would break."""
    if "%%" in sql:
        return "", ""
    return f"berth_{next(_names)}", numbered_parameters(sql)


def _sentinel(i: int, kind: str):
    if kind == "i":
        return _INT_BASE + i
    if kind == "b":
        return f"\x01berth-param-{i}\x01".encode()
    return f"\x01berth-param-{i}\x01"


def _unwrapped(param):
    """A compiled parameter as it was passed in: peewee wraps bytes for the driver."""
    if isinstance(param, memoryview):
        return bytes(param)
    adapted = getattr(param, "adapted", None)  # psycopg2.Binary
    return adapted if isinstance(adapted, bytes) else param


def to_model(model: type[pw.Model], row: tuple) -> pw.Model:
    """A model instance from a row of `model.select()` (all fields, in field order)."""
    converters = _converters.get(model)
    if converters is None:
        converters = _converters[model] = [
            (f.name, _datetime if type(f) is pw.DateTimeField else f.python_value) for f in model._meta.sorted_fields
        ]
    instance = model(__no_default__=True)
    instance.__data__ = {name: convert(v) for (name, convert), v in zip(converters, row, strict=True)}
    instance._dirty.clear()
    return instance


def to_models(row: tuple, *models: type[pw.Model]) -> list[pw.Model]:
    """Model instances from a row of `first.select(*models)` over a join: each model's fields, in
    field order, one model after the other."""
    result, start = [], 0
    for model in models:
        end = start + len(model._meta.sorted_fields)
        result.append(to_model(model, row[start:end]))
        start = end
    if start != len(row):
        raise ValueError(f"a row of {len(row)} columns is not one of {[m.__name__ for m in models]}")
    return result


_converters: dict[type[pw.Model], list] = {}
_DATETIME = pw.DateTimeField()


def _datetime(value):
    """SQLite's stored text (`2026-11-29 21:15:23.123456`) through the C parser; anything else
    (PostgreSQL's datetime objects, other shapes) as peewee converts it (strptime, ~10x slower)."""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:  # peewee's formats are all naive
                return parsed
    return _DATETIME.python_value(value)
