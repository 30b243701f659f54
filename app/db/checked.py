"""Rows that nearly every data-plane read looks up and that rarely change (the registry by its
name, the access token behind the credentials), kept in the process and checked instead of read
again, on PostgreSQL.

On PostgreSQL every lookup is a round trip to the server: a manifest GET was three (the token,
the registry, then the manifest), each costing the server a wake-up and the process a send and a
receive. A `CheckedLookup` keeps the row it read, with its version: PostgreSQL's `xmin`, the
transaction that wrote that version of the row, which every UPDATE changes (a row deleted and
inserted again is a new version too). The next request that looks it up gets the kept row, and a
check that the row is still that version goes to the server in the same message as the
request's next statement, before it (`PostgresDatabase.defer_check`): one round trip for the
whole request (measured, a manifest GET at 16 connections, two processes, PostgreSQL on the same
2 CPUs: 0.45 -> 0.37 ms of CPU per request, Berth's and the server's together, and ~18% more
requests a second).

If the row changed or is gone, the check fails, the statement after it does not run, and it
raises `RowChanged`; the request is then run again from its start with every row read afresh
(`reads`, app/oci/router.py). So nothing is answered from a kept row that was not current when
the request's statement ran: a revoked token, a deleted or renamed registry, a registry made
private take effect on the next request, as without the cache, in every process and replica.

Only within `reads()` and only on PostgreSQL. The data plane runs every request in it: a GET or
HEAD changes nothing before its first statement and so can run again from the start; any other
request has its checks sent on their own (`settle`) once it is authorized, before its body is
read or anything written: one round trip where its two lookups were two. Only on PostgreSQL:
SQLite's reads are calls in the process, no cheaper from a cache. A row not found is not kept
(a client cannot fill the cache with names that do not exist); each lookup keeps at most MOST
rows, each for at most KEEP_FOR seconds (far too short for transaction ids to wrap around and a
version to come back).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import peewee as pw

from app.db.models import database
from app.db.prepared import Prepared, to_model
from app.db.setup import DatabaseUnavailable, RowChanged

__all__ = ["CheckedLookup", "RowChanged", "reads", "settle"]

MOST = 4096
KEEP_FOR = 300.0

_state = threading.local()  # .on: lookups may use kept rows; .used: [(lookup, key)] this attempt


class CheckedLookup:
    """`Prepared(build, kinds, model).first(*args)`, whose found rows are kept and checked
    (above). `build` selects from `model` alone, with `id` its primary key."""

    def __init__(self, build: Callable[..., pw.Select], kinds: str, model: type[pw.Model]) -> None:
        self._model = model
        self._table = model._meta.table_name
        self._plain = Prepared(build, kinds, model)
        self._versioned = Prepared(lambda *a: build(*a).select_extend(pw.SQL('"t1"."xmin"::text')), kinds)
        # args -> (the database it was read from, when, the row, its version)
        self._kept: dict[tuple, tuple[pw.Database, float, tuple, str]] = {}
        self._lock = threading.Lock()

    def first(self, *args) -> pw.Model | None:
        if not _active():
            return self._plain.first(*args)
        db = database.obj
        kept = self._kept.get(args)
        now = time.monotonic()
        if kept is not None and kept[0] is db and now - kept[1] < KEEP_FOR:
            _, _, row, version = kept
            instance = to_model(self._model, row)
            db.defer_check(self._table, instance.id, version)
            _state.used.append((self, args))
            return instance
        rows = self._versioned.rows(*args)
        if not rows:
            self.forget(*args)
            return None
        *fields, version = rows[0]
        row = tuple(fields)
        with self._lock:
            if len(self._kept) >= MOST:
                self._kept.clear()
            self._kept[args] = (db, now, row, version)
        return to_model(self._model, row)

    def forget(self, *args) -> None:
        """Drop the row kept for `args`, if any (this process just changed it, say)."""
        with self._lock:
            self._kept.pop(args, None)


@contextmanager
def reads() -> Iterator[None]:
    """Within this block this thread's `CheckedLookup`s may answer from kept rows. Their
    checks go to the server with the block's next statement, or when the block ends, also when
    it ends with an error that is an answer (a refusal may rest on a kept row). RowChanged: the
    block must run again; the rows it used are dropped, so the next run reads them afresh."""
    db = database.obj
    if not hasattr(db, "defer_check"):  # SQLite
        yield
        return
    _state.on, _state.used = True, []
    try:
        try:
            yield
        except (RowChanged, pw.DatabaseError, DatabaseUnavailable):
            raise  # the checks went with the statement that failed, or cannot go now
        except Exception:
            db.settle_checks()
            raise
        db.settle_checks()
    except RowChanged:
        for lookup, key in _state.used:
            lookup.forget(*key)
        raise
    finally:
        db.drop_checks()
        _state.on, _state.used = False, []


def settle() -> None:
    """Within `reads()`: check the kept rows used so far now (RowChanged if one changed), and
    use none from here on. For a request whose next steps must not run twice (a write)."""
    if _active():
        database.obj.settle_checks()
        _state.on = False


def _active() -> bool:
    return getattr(_state, "on", False)
