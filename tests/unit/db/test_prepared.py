"""Prepared hot-path queries on a real SQLite database (and PostgreSQL): compiled once per
database, they return what the same peewee query returns, with each call's own parameters, as
model instances whose datetimes are datetimes."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db.models import AccessToken, Organization, Registry
from app.db.prepared import Prepared, to_model
from app.db.setup import open_database


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "postgres":
        from tests.support import postgres

        url = postgres.create_database()
    else:
        url = f"sqlite:///{tmp_path / 'berth.db'}"
    database = open_database(url)
    yield database
    database.close()


BY_ORG_AND_NAME = Prepared(
    lambda org, name: Registry.select().where((Registry.org == org) & (Registry.name == name)), "is", Registry
)


def test_a_prepared_query_returns_what_peewee_returns_for_each_call_s_parameters(db):
    a, b = Organization.create(name="a"), Organization.create(name="b")
    ra = Registry.create(org=a, name="same", visibility="public")
    Registry.create(org=b, name="other")
    found = BY_ORG_AND_NAME.first(a.id, "same")
    assert found.id == ra.id and found.visibility == "public" and found.uid == ra.uid
    assert isinstance(found.created_at, dt.datetime) and found.created_at == Registry.get_by_id(ra.id).created_at
    assert BY_ORG_AND_NAME.first(b.id, "same") is None
    assert BY_ORG_AND_NAME.first(b.id, "other").org_id == b.id
    assert BY_ORG_AND_NAME.first(a.id, "x'; DROP TABLE registry; --") is None
    assert Registry.select().count() == 2


def test_a_row_becomes_a_model_that_saves_nothing_unasked(db):
    org = Organization.create(name="o")
    token = AccessToken.create(
        org=org, name="t", role="reader", token_hash="h" * 64, expires_at=dt.datetime(2030, 1, 2, 3, 4, 5, 6)
    )
    row = AccessToken.select().where(AccessToken.id == token.id).tuples().get()
    model = to_model(AccessToken, row)
    assert model.expires_at == dt.datetime(2030, 1, 2, 3, 4, 5, 6) and model.revoked_at is None
    assert model.org_id == org.id and not model.dirty_fields


_WRITE = Prepared(
    lambda name, created: Organization.insert(name=name, created_at=created).returning(Organization.id),
    "ss",
    at_start=False,
)


def test_writes_compile_too_and_return_what_they_return(db):
    when = dt.datetime(2026, 12, 3, 8, 0, 0, 123456)
    new_id = _WRITE.cursor("written", when).fetchall()[0][0]
    stored = Organization.get_by_id(new_id)
    assert stored.name == "written" and stored.created_at == when
    assert _WRITE.cursor("again", when).fetchall()[0][0] == new_id + 1


def test_postgres_prepares_each_statement_once_per_connection_and_again_on_a_new_one():
    """On PostgreSQL a compiled statement runs as a server-side prepared statement: PREPAREd
    the first time a connection runs it, EXECUTEd after that, and prepared again on the
    connection that replaces one the server dropped."""
    from tests.support import postgres

    url = postgres.create_database()
    database = open_database(url)
    try:
        org = Organization.create(name="p")
        Registry.create(org=org, name="r", uid="u")

        def prepared_here() -> set[str]:
            rows = database.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()
            return {name for (name,) in rows}

        assert BY_ORG_AND_NAME.first(org.id, "r").name == "r"
        names = prepared_here()
        assert len(names) == 1 and next(iter(names)).startswith("berth_")
        assert BY_ORG_AND_NAME.first(org.id, "r").name == "r"
        assert prepared_here() == names  # executed, not prepared again
        postgres.terminate_connections(url)  # the server drops every connection
        assert BY_ORG_AND_NAME.first(org.id, "r").name == "r"  # run again on a new one, prepared there
        assert prepared_here() == names
    finally:
        database.close()


def test_postgres_server_prepare_off_runs_plain_statements():
    from tests.support import postgres

    database = open_database(postgres.create_database() + "?server_prepare=off")
    try:
        org = Organization.create(name="p")
        Registry.create(org=org, name="r", uid="u")
        assert BY_ORG_AND_NAME.first(org.id, "r").name == "r"
        assert database.execute_sql("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
    finally:
        database.close()
    with pytest.raises(SystemExit, match="server_prepare"):
        open_database(postgres.create_database() + "?server_prepare=maybe")


def test_statements_holding_a_literal_percent_are_not_rewritten_for_postgres():
    from app.db.prepared import _server_statement

    name, sql = _server_statement('SELECT "a" FROM "t" WHERE "b" = %s AND "c" IN (%s, %s)')
    assert name.startswith("berth_") and sql == 'SELECT "a" FROM "t" WHERE "b" = $1 AND "c" IN ($2, $3)'
    assert _server_statement("SELECT '100%%' WHERE x = %s") == ("", "")
