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


@pytest.mark.parametrize(
    "version, fixed",
    [
        ((3, 40, 1), False),  # Debian 12's
        ((3, 51, 2), False),
        ((3, 51, 3), True),
        ((3, 53, 4), True),
        ((3, 50, 6), False),
        ((3, 50, 7), True),  # a backport
        ((3, 44, 5), False),
        ((3, 44, 6), True),  # a backport
        ((3, 45, 1), False),
    ],
)
def test_which_sqlite_libraries_have_the_wal_reset_fix(version, fixed):
    assert setup.sqlite_has_wal_reset_fix(version) is fixed


def test_berth_runs_sqlite_with_a_library_that_has_the_wal_reset_fix():
    """The SQLite that peewee (and so Berth) runs with here: pysqlite3's, which setup installs,
    where the standard library's (Debian 12: 3.40.1) has the bug that lost a bench's writes."""
    driver, version = setup.sqlite_library()
    assert setup.sqlite_has_wal_reset_fix(pw.sqlite3.sqlite_version_info), (driver, version)


def test_opening_sqlite_with_a_library_that_has_the_bug_says_what_to_install(tmp_path, monkeypatch, caplog):
    class Old:
        __name__ = "sqlite3"
        sqlite_version, sqlite_version_info = "3.40.1", (3, 40, 1)

    monkeypatch.setattr(pw, "sqlite3", Old())
    database_for(f"sqlite:///{tmp_path / 'a.db'}")
    assert "SQLite 3.40.1 (through sqlite3) has the WAL-reset bug" in caplog.text
    assert "pysqlite3>=0.6.1" in caplog.text
    caplog.clear()
    monkeypatch.undo()
    database_for(f"sqlite:///{tmp_path / 'b.db'}")
    assert "WAL-reset" not in caplog.text
