"""The metadata model's own rules, on SQLite and PostgreSQL: deleting a registry removes all it
owns (repositories, manifests, tags, blobs, tokens scoped to it) and nothing of its neighbours;
timestamps are naive UTC; registry uids are never reused."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db.models import (
    AccessToken,
    Blob,
    Manifest,
    Organization,
    Registry,
    Repository,
    RepositoryBlob,
    Tag,
    new_registry_uid,
    utcnow,
)
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


def _fill(registry: Registry) -> None:
    repo = Repository.create(registry=registry, name="app")
    blob = Blob.create(registry=registry, digest="sha256:" + "a" * 64, size=1)
    RepositoryBlob.create(repository=repo, blob=blob)
    m = Manifest.create(repository=repo, digest="sha256:" + "b" * 64, media_type="x", size=1, content=b"{}")
    Tag.create(repository=repo, name="v1", manifest=m)
    AccessToken.create(
        org=registry.org, registry=registry, name="t", role="reader", token_hash=registry.name.ljust(64, "0")
    )


def test_deleting_a_registry_removes_all_it_owns_and_nothing_else(db):
    org = Organization.create(name="o")
    doomed, neighbour = Registry.create(org=org, name="doomed"), Registry.create(org=org, name="neighbour")
    _fill(doomed)
    _fill(neighbour)
    doomed.delete_instance()
    for model in (Repository, Blob, RepositoryBlob, Manifest, Tag, AccessToken):
        assert model.select().count() == 1, model.__name__
    assert Repository.get().registry_id == neighbour.id


def test_times_are_naive_utc():
    now = utcnow()
    assert now.tzinfo is None
    assert abs(now - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(seconds=5)


def test_a_registry_s_identity(db):
    uids = {new_registry_uid() for _ in range(1000)}
    assert len(uids) == 1000 and all(len(u) == 32 for u in uids)
    org = Organization.create(name="o")
    first = Registry.create(org=org, name="r")
    first.delete_instance()
    again = Registry.create(org=org, name="r")
    assert again.uid != first.uid
    assert not again.is_public and again.serves
    assert Registry(visibility="public").is_public and not Registry(status="deleting").serves
