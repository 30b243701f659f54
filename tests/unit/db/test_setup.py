"""Opening the metadata database and surviving lost PostgreSQL connections, on the real SQLite
and the real PostgreSQL at 127.0.0.1:5432: URLs an operator writes, SQLite's pragmas, a
statement whose connection the server dropped run again on a new one, a transaction that lost
its connection refused with 503 (and run again whole by `atomically`), and an unreachable server
answered with 503 rather than a hang."""

from __future__ import annotations

import time

import peewee as pw
import pytest

from app.db import setup
from app.db.models import Organization
from app.db.setup import DatabaseUnavailable, atomically, database_for, open_database, transaction
from tests.support import postgres


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://db/berth", "unsupported scheme 'mysql'"),
        ("postgresql://berth:hunter2@db:5432/", "names no database"),
    ],
)
def test_a_url_berth_cannot_use_stops_it_without_showing_the_password(url, message):
    with pytest.raises(SystemExit, match=message) as raised:
        database_for(url)
    assert "hunter2" not in str(raised.value)


def test_postgres_options_in_the_url_override_the_defaults():
    db = database_for("postgresql://u@db.example:5433/berth?max_connections=5&connect_timeout=7")
    assert db.database == "berth" and db._max_connections == 5
    assert db.connect_params["connect_timeout"] == 7 and db.connect_params["application_name"] == "berth"
    assert db.connect_params["host"] == "db.example" and db.connect_params["port"] == 5433


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'nested' / 'berth.db'}")
    try:
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(RuntimeError), transaction():
            Organization.create(name="rolled-back")
            raise RuntimeError
        assert not Organization.select().exists()
    finally:
        db.close()


def test_a_statement_whose_connection_was_dropped_runs_again_on_a_new_one(pg):
    db, url = pg
    Organization.create(name="a")
    assert postgres.terminate_connections(url) >= 1
    assert Organization.select().count() == 1  # not an error: the statement ran again


def test_a_transaction_whose_connection_was_dropped_is_a_503(pg):
    db, url = pg
    with pytest.raises(DatabaseUnavailable) as raised:
        with transaction():
            Organization.create(name="a")
            postgres.terminate_connections(url)
            Organization.create(name="b")
    assert raised.value.status == 503 and "Retry-After" in raised.value.headers
    assert Organization.select().count() == 0


def test_atomically_runs_a_transaction_that_lost_its_connection_again_whole(pg):
    db, url = pg
    runs = []

    def work():
        runs.append(1)
        Organization.create(name=f"o{len(runs)}")
        if len(runs) == 1:
            postgres.terminate_connections(url)
        Organization.select().count()

    atomically(work)
    assert len(runs) == 2 and [o.name for o in Organization.select()] == ["o2"]


def test_an_unreachable_server_is_a_503_within_the_connect_budget():
    db = database_for("postgresql://postgres@127.0.0.1:1/berth")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        db.connect()
    assert time.monotonic() - started < setup.CONNECT_BUDGET + 2
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):  # the circuit is open: the next caller fails at once
        db.connect()
    assert time.monotonic() - started < 0.5


def test_serialize_needs_a_transaction_on_postgres(pg):
    with pytest.raises(RuntimeError, match="needs a transaction"):
        setup.serialize("x")
    with transaction():
        setup.serialize("x")


def test_a_lost_connection_is_also_a_peewee_operational_error():
    assert isinstance(DatabaseUnavailable(), pw.OperationalError)


def test_atomically_runs_again_a_transaction_postgresql_ended_for_a_deadlock(pg):
    """Two transactions that update the same two rows in opposite orders: PostgreSQL ends one
    (SQLSTATE 40P01), and `atomically` runs that one again, so both complete."""
    import threading

    db, url = pg
    first, second = Organization.create(name="a").id, Organization.create(name="b").id
    both_hold_one = threading.Barrier(2)
    runs = {"x": 0, "y": 0}
    errors: list[BaseException] = []

    def work(who: str, one: int, other: int) -> None:
        def transaction_body() -> None:
            runs[who] += 1
            Organization.update(sku=who).where(Organization.id == one).execute()
            if runs[who] == 1:
                both_hold_one.wait(10)
            Organization.update(sku=who).where(Organization.id == other).execute()

        try:
            atomically(transaction_body)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            setup.release_connection()

    threads = [
        threading.Thread(target=work, args=("x", first, second)),
        threading.Thread(target=work, args=("y", second, first)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and sorted(runs.values()) == [1, 2]
