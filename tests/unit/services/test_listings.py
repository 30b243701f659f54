"""The tag version the tag-list cache is checked against: raised by the database's own triggers
(migration 8) on every tag insert, move and delete, including cascades, on a real SQLite
database (and PostgreSQL, when the suite runs with BERTH_TEST_DATABASE=postgres)."""

from __future__ import annotations

import time

import pytest

from app.db.models import Manifest, Organization, Registry, Repository, Tag, TagVersion
from app.db.setup import open_database
from app.services import listings
from tests.support import postgres


@pytest.fixture
def db(tmp_path):
    url = postgres.create_database() if postgres.ALL_SERVERS_ON_POSTGRES else f"sqlite:///{tmp_path / 'berth.db'}"
    database = open_database(url)
    yield Registry.create(org=Organization.create(name="o"), name="r")
    database.close()


@pytest.fixture
def lists(tmp_path):
    """Tag lists shared through files in the cache directory, with the background rebuilds."""
    tag_lists = listings.TagLists(tmp_path / "cache").start()
    yield tag_lists
    tag_lists.stop()


def _manifest(repo: Repository, n: int) -> Manifest:
    return Manifest.create(
        repository=repo,
        digest=f"sha256:{n:064x}",
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=2,
        content=b"{}",
    )


def version(repo: Repository) -> int:
    row = TagVersion.get_or_none(TagVersion.repository == repo.id)
    return row.version if row else 0


def test_every_tag_change_raises_the_version(db):
    repo = Repository.create(registry=db, name="app")
    other = Repository.create(registry=db, name="other")
    m1, m2 = _manifest(repo, 1), _manifest(repo, 2)
    seen = [version(repo)]

    def changed():
        seen.append(version(repo))
        assert seen[-1] > seen[-2], seen

    Tag.create(repository=repo, name="a", manifest=m1)
    changed()
    Tag.insert_many([{"repository": repo, "name": n, "manifest": m1} for n in ("b", "c")]).execute()
    changed()
    Tag.update(manifest=m2).where((Tag.repository == repo) & (Tag.name == "a")).execute()
    changed()
    Tag.delete().where((Tag.repository == repo) & (Tag.name == "b")).execute()
    changed()
    Manifest.delete().where(Manifest.id == m2.id).execute()  # its tag "a" goes by cascade
    changed()
    assert [t.name for t in Tag.select().where(Tag.repository == repo)] == ["c"]
    assert version(other) == 0  # another repository's version is its own


def test_deleting_a_repository_with_tags_works_and_leaves_no_version(db):
    repo = Repository.create(registry=db, name="gone")
    Tag.create(repository=repo, name="a", manifest=_manifest(repo, 1))
    Repository.delete().where(Repository.id == repo.id).execute()  # tags cascade; no FK error
    assert TagVersion.select().where(TagVersion.repository == repo.id).count() == 0


def test_a_list_is_never_served_for_an_older_version_or_another_repository(db, lists):
    repo = Repository.create(registry=db, name="many")
    m = _manifest(repo, 1)
    Tag.insert_many([{"repository": repo, "name": f"t{i:04d}", "manifest": m} for i in range(300)]).execute()
    assert lists.tags(repo, None, None)[0][-1] == "t0299"
    lists.cache._lists.clear()  # another process: only the shared file is left
    assert len(lists.tags(repo, None, None)[0]) == 300
    Tag.delete().where(Tag.name == "t0299").execute()
    assert lists.tags(repo, None, None)[0][-1] == "t0298"
    assert lists.tags(repo, 2, "t0296") == (["t0297", "t0298"], False)
    # A repository created later in place of a deleted one (same id on SQLite) starts afresh.
    repo_id = repo.id
    Repository.delete().where(Repository.id == repo.id).execute()
    again = Repository.create(id=repo_id, registry=db, name="many")
    assert lists.tags(again, None, None) == ([], False)
    Tag.create(repository=again, name="only", manifest=_manifest(again, 9))
    assert lists.tags(again, None, None) == (["only"], False)


def test_a_large_repository_list_is_rebuilt_after_its_tags_change(db, lists, tmp_path, monkeypatch):
    """Once pushes pause, the list is rebuilt in the background, so the next listing on any
    worker reads the shared file instead of querying every tag; small repositories are left."""
    monkeypatch.setattr(listings, "WARM_AFTER", 0.05)
    repo, small = Repository.create(registry=db, name="many"), Repository.create(registry=db, name="few")
    m = _manifest(repo, 1)
    Tag.insert_many([{"repository": repo, "name": f"t{i:04d}", "manifest": m} for i in range(300)]).execute()
    Tag.create(repository=small, name="only", manifest=_manifest(small, 2))
    lists.changed(repo)
    lists.changed(small)
    cached = tmp_path / "cache" / str(repo.id)
    for _ in range(200):
        if cached.exists():
            break
        time.sleep(0.02)
    time.sleep(0.1)
    assert cached.read_bytes().split(b"\n", 1)[0] == listings._key(repo).encode()
    assert not (tmp_path / "cache" / str(small.id)).exists()
    lists.cache._lists.clear()  # a worker that never listed it: served from the file
    assert len(lists.tags(repo, None, None)[0]) == 300
    assert lists.cache._lists[repo.id].key == listings._key(repo)


@pytest.mark.parametrize("tags", [listings.MIN_CACHED_TAGS - 1, listings.MIN_CACHED_TAGS])
def test_the_warmer_keeps_a_list_from_exactly_min_cached_tags(db, lists, tmp_path, tags):
    repo = Repository.create(registry=db, name="edge")
    m = _manifest(repo, 1)
    Tag.insert_many([{"repository": repo, "name": f"t{i:04d}", "manifest": m} for i in range(tags)]).execute()
    lists._warmer._warm(repo.id)
    assert (tmp_path / "cache" / str(repo.id)).exists() == (tags >= listings.MIN_CACHED_TAGS)
    lists._warmer._warm(repo.id + 1000)  # a repository gone meanwhile: nothing, no error
