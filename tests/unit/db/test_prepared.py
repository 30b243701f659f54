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
