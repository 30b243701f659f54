"""Statements held back inside a PostgreSQL transaction (`PostgresDatabase.defer`, `Prepared.send`,
`serialize(..., deferred=True)`), on the real server at 127.0.0.1:5432: they reach the server in
one message with the next statement whose result is read, or with COMMIT; their errors are
raised there and undo the transaction; a transaction that runs nothing costs no round trip; and a
transaction whose first message finds the connection dropped is sent again whole on a new one,
while one that had reached the server (or whose COMMIT went with the message) is a 503.

Messages are counted by the `messages` fixture (tests/unit/db/conftest.py)."""

from __future__ import annotations

import threading
import zlib

import peewee as pw
import pytest

from app.db import setup
from app.db.models import Organization, utcnow
from app.db.prepared import Prepared
from app.db.setup import DatabaseUnavailable, transaction
from tests.support import postgres

_INSERT_ORG = Prepared(lambda name, now: Organization.insert(name=name, created_at=now), "ss", at_start=False)


class INSERT_ORG:  # noqa: N801 - reads as the statement it sends
    @staticmethod
    def send(name: str) -> None:
        _INSERT_ORG.send(name, utcnow())


def _names() -> list[str]:
    return [o.name for o in Organization.select().order_by(Organization.name)]


def _lock_is_free(url: str, name: str) -> bool:
    """Whether another session can take `serialize(name)`'s lock right now (and let it go)."""
    key = zlib.crc32(name.encode())
    return postgres.sql(url, "SELECT pg_try_advisory_lock(%s), pg_advisory_unlock_all()", (key,))[0][0]


def test_a_deferred_lock_is_taken_with_the_next_statement_and_held_to_the_commit(pg):
    db, url = pg
    with transaction():
        setup.serialize("deferred", deferred=True)
        assert _lock_is_free(url, "deferred")  # not sent yet
        db.execute_sql("SELECT 1")
        assert not _lock_is_free(url, "deferred")  # sent with the SELECT, held
    assert _lock_is_free(url, "deferred")


def test_held_back_writes_go_with_the_next_read_or_the_commit_in_one_message_each(pg, messages):
    db, url = pg
    with transaction():
        INSERT_ORG.send("a")
        INSERT_ORG.send("b")
        assert db.execute_sql("SELECT count(*) FROM organization").fetchone()[0] == 2  # sees its own writes
        INSERT_ORG.send("c")
    assert _names() == ["a", "b", "c"]
    first, last = [m for m in messages if not m.startswith("PREPARE")][:2]
    assert first.startswith("BEGIN; ") and first.count("EXECUTE") == 2 and first.endswith("FROM organization")
    assert last.startswith("EXECUTE") and last.endswith("; COMMIT")


def test_a_transaction_that_runs_nothing_sends_nothing(pg, messages):
    with transaction():
        pass
    with pytest.raises(RuntimeError):
        with transaction():
            setup.serialize("never", deferred=True)
            raise RuntimeError("refused before any statement was read")
    assert messages == []


def test_an_error_in_a_held_back_statement_is_raised_at_the_next_and_undoes_the_transaction(pg):
    db, url = pg
    Organization.create(name="taken")
    with pytest.raises(pw.IntegrityError):
        with transaction():
            INSERT_ORG.send("new")
            INSERT_ORG.send("taken")  # the unique name: refused...
            db.execute_sql("SELECT 1")  # ...here
    assert _names() == ["taken"]  # "new" went with it
    with transaction():  # the connection is usable: the failed transaction was rolled back
        INSERT_ORG.send("after")
    assert _names() == ["after", "taken"]


def test_an_error_at_the_commit_undoes_everything_held_back(pg):
    Organization.create(name="taken")
    with pytest.raises(pw.IntegrityError):
        with transaction():
            INSERT_ORG.send("new")
            INSERT_ORG.send("taken")
    assert _names() == ["taken"]


def test_a_savepoint_rolled_back_takes_its_held_back_writes_with_it(pg):
    db, url = pg
    with transaction():
        INSERT_ORG.send("kept")
        with pytest.raises(RuntimeError):
            with db.atomic():  # a savepoint
                INSERT_ORG.send("undone")
                raise RuntimeError
        INSERT_ORG.send("also kept")
    assert _names() == ["also kept", "kept"]


def test_outside_a_transaction_a_deferred_statement_runs_at_once(pg):
    INSERT_ORG.send("now")
    assert _names() == ["now"]


def test_a_dropped_connection_met_by_the_transactions_first_message_is_sent_again_on_a_new_one(pg):
    db, url = pg
    Organization.create(name="before")  # this thread holds a pooled connection...
    assert postgres.terminate_connections(url) >= 1  # ...that the server has dropped
    with transaction():
        INSERT_ORG.send("a")
        assert db.execute_sql("SELECT count(*) FROM organization").fetchone()[0] == 2
        INSERT_ORG.send("b")
    assert _names() == ["a", "b", "before"]


def test_a_dropped_connection_after_the_first_message_is_a_503_and_nothing_is_kept(pg):
    db, url = pg
    with pytest.raises(DatabaseUnavailable):
        with transaction():
            INSERT_ORG.send("a")
            db.execute_sql("SELECT 1")  # BEGIN and the insert reached the server
            postgres.terminate_connections(url)
            INSERT_ORG.send("b")
            db.execute_sql("SELECT 1")
    assert _names() == []


def test_a_whole_transaction_in_its_commit_message_is_not_sent_twice(pg):
    """BEGIN, the writes and COMMIT in one message: when the connection is found dropped there,
    the server may have committed before it went, so it is a 503 (the client retries), never
    sent again."""
    db, url = pg
    Organization.create(name="before")
    postgres.terminate_connections(url)
    with pytest.raises(DatabaseUnavailable):
        with transaction():
            INSERT_ORG.send("a")
    assert _names() == ["before"]


def test_a_patient_thread_keeps_its_connection_and_its_statements_are_cancelled_past_it(pg):
    """`patience` on PostgreSQL (the event loop's): the server cancels that thread's statements
    past the patience, on a connection the thread keeps from request to request, so no other
    thread is handed a connection with the setting on it."""
    db, url = pg
    seen: dict[str, object] = {}

    def loop() -> None:
        with setup.patience(0.5):
            seen["loop"] = db.execute_sql("SHOW statement_timeout").fetchone()[0]
            try:
                db.execute_sql("SELECT pg_sleep(2)")
            except pw.OperationalError as e:
                seen["cancelled"] = setup.is_cancelled(e)
            setup.release_connection()  # a request's end: kept
            seen["kept"] = not db.is_closed()

    def other() -> None:
        seen["other"] = db.execute_sql("SHOW statement_timeout").fetchone()[0]
        setup.release_connection()

    for target in (loop, other, other):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(30)
    assert seen == {"loop": "500ms", "cancelled": True, "kept": True, "other": "0"}
