"""Removing a repository row nothing was committed to, on a real SQLite database: it is kept
while anything holds it, and a push that loses the row under it runs again on a new one."""

from __future__ import annotations

import peewee as pw
import pytest

from app.db.models import Blob, Manifest, Organization, Registry, Repository, RepositoryBlob, Upload
from app.db.setup import open_database
from app.services import repositories


@pytest.fixture
def registry(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield Registry.create(org=Organization.create(name="o"), name="r")
    db.close()


def test_an_empty_repository_is_removed_and_one_holding_anything_is_kept(registry):
    empty, uploading, linked, pushed = (
        Repository.create(registry=registry, name=n) for n in ("empty", "uploading", "linked", "pushed")
    )
    Upload.create(id="00000000-0000-0000-0000-000000000001", repository=uploading, registry_id=uploading.registry_id)
    blob = Blob.create(registry=registry, digest="sha256:" + "a" * 64, size=1)
    RepositoryBlob.create(repository=linked, blob=blob)
    Manifest.create(repository=pushed, digest="sha256:" + "b" * 64, media_type="x", size=2, content=b"{}")
    assert [repositories.discard_if_empty(r.id) for r in (empty, uploading, linked, pushed)] == [
        True,
        False,
        False,
        False,
    ]
    assert sorted(r.name for r in Repository.select()) == ["linked", "pushed", "uploading"]
    assert sorted(r.name for r in Repository.select().where(repositories.visible())) == ["linked", "pushed"]


def test_a_push_whose_row_is_removed_under_it_runs_again_on_a_new_one(registry):
    stale = Repository.create(registry=registry, name="app")
    calls = []

    def start(repository: Repository) -> Upload:
        calls.append(repository.id)
        if len(calls) == 1:  # a refused push's cleanup wins the race for the row
            assert repositories.discard_if_empty(repository.id)
        return Upload.create(
            id=f"00000000-0000-0000-0000-00000000000{len(calls)}",
            repository=repository,
            registry_id=repository.registry_id,
        )

    upload = repositories.pushing(registry, "app", start)
    assert calls[0] == stale.id and len(calls) == 2
    assert Repository.get(Repository.name == "app").id == upload.repository_id == calls[1]


def test_a_failure_that_is_not_a_lost_row_is_not_retried(registry):
    Repository.create(registry=registry, name="app")
    calls = []

    def clash(repository: Repository) -> None:
        calls.append(1)
        Upload.create(
            id="00000000-0000-0000-0000-000000000001", repository=repository, registry_id=repository.registry_id
        )

    repositories.pushing(registry, "app", clash)
    with pytest.raises(pw.IntegrityError):
        repositories.pushing(registry, "app", clash)
    assert len(calls) == 2
