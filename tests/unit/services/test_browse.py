"""Browsing a registry on a real SQLite database and filesystem store: the folder tree, per
repository stats, sizes of images and indexes (an absent child adds nothing and says so), and a
manifest's detail with its image config previewed, whatever a pusher wrote in it."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from app.db.models import Blob, Manifest, Organization, Registry, Repository, RepositoryBlob, Tag
from app.services import browse
from app.spec import media_types as mt
from app.spec.errors import RegistryError
from app.storage.base import blob_key
from app.storage.filesystem import FilesystemStore


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def world(database, tmp_path):
    registry = Registry.create(org=Organization.create(name="o"), name="r")
    return registry, FilesystemStore(tmp_path / "blobs")


def _repo(registry, name, *, blob_size=0):
    repo = Repository.create(registry=registry, name=name)
    if blob_size:  # something committed: the repository is visible
        blob = Blob.create(registry=registry, digest=_digest(name.encode()), size=blob_size)
        RepositoryBlob.create(repository=repo, blob=blob)
    return repo


def _manifest(repo, doc: dict, media_type=mt.OCI_MANIFEST) -> Manifest:
    content = json.dumps(doc).encode()
    return Manifest.create(
        repository=repo, digest=_digest(content), media_type=media_type, size=len(content), content=content
    )


def test_the_tree_shows_folders_and_repositories_one_level_at_a_time(world):
    registry, _ = world
    for name in ("team/app", "team/api", "team/deep/x", "solo"):
        _repo(registry, name, blob_size=1)
    _repo(registry, "team/empty")  # nothing committed: not shown
    top = browse.tree(registry, "")
    assert [(n.path, n.kind, n.repositories) for n in top] == [("solo", "repository", 0), ("team/", "folder", 3)]
    assert [n.path for n in browse.tree(registry, "team/")] == ["team/api", "team/app", "team/deep/"]
    with pytest.raises(RegistryError, match="NOT_FOUND"):
        browse.tree(registry, "nobody/")
    with pytest.raises(RegistryError, match="ending in '/'"):
        browse.tree(registry, "team")


def test_repository_stats_count_tags_and_distinct_blobs(world):
    registry, _ = world
    repo, other = _repo(registry, "app", blob_size=100), _repo(registry, "other")
    m = _manifest(repo, {})
    Tag.create(repository=repo, name="a", manifest=m)
    Tag.create(repository=repo, name="b", manifest=m)
    stats = browse.repository_stats([repo, other])
    assert stats[repo.id]["tags"] == 2 and stats[repo.id]["size"] == 100 and stats[repo.id]["last_push"].endswith("Z")
    assert stats[other.id] == {"tags": 0, "size": 0, "last_push": None}
    assert browse.repository_stats([]) == {}


def test_an_index_is_the_size_of_its_distinct_blobs_and_an_absent_child_adds_nothing(world):
    registry, _ = world
    repo = _repo(registry, "app", blob_size=1)
    shared = {"digest": "sha256:" + "c" * 64, "size": 10}
    amd = _manifest(repo, {"config": {"digest": "sha256:" + "a" * 64, "size": 1}, "layers": [shared]})
    arm = _manifest(repo, {"config": {"digest": "sha256:" + "b" * 64, "size": 2}, "layers": [shared, "junk"]})
    index = _manifest(
        repo,
        {
            "manifests": [
                {"digest": amd.digest, "platform": {"os": "linux", "architecture": "amd64"}},
                {"digest": arm.digest, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
                {"digest": "sha256:" + "d" * 64, "platform": {"os": "linux", "architecture": "s390x"}},
            ]
        },
        media_type=mt.OCI_INDEX,
    )
    described = browse.Sizes(repo).describe(index)
    assert described["size"] == 13
    assert [(p["platform"], p["size"], p["present"]) for p in described["platforms"]] == [
        ("linux/amd64", 11, True),
        ("linux/arm/v7", 12, True),
        ("linux/s390x", None, False),
    ]


def test_a_manifest_that_is_not_json_has_no_size_rather_than_an_error(world):
    registry, _ = world
    repo = _repo(registry, "app", blob_size=1)
    bad = Manifest.create(repository=repo, digest="sha256:" + "e" * 64, media_type="x", size=1, content=b"[" * 100)
    assert browse.Sizes(repo).describe(bad) == {"size": 0, "platforms": []}


def _put_blob(store, registry, data: bytes) -> str:
    digest, upload = _digest(data), str(uuid.uuid4())
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(data)
    store.commit_upload(upload, blob_key(registry.id, digest), len(data))
    return digest


def test_a_manifest_s_detail_previews_its_config_and_says_which_blobs_are_held(world):
    registry, store = world
    repo = _repo(registry, "app")
    config = json.dumps(
        {"os": "linux", "architecture": "amd64", "config": {"Entrypoint": ["/app"], "Labels": {"team": "a"}}}
    ).encode()
    config_digest = _put_blob(store, registry, config)
    RepositoryBlob.create(repository=repo, blob=Blob.create(registry=registry, digest=config_digest, size=len(config)))
    m = _manifest(
        repo,
        {
            "config": {"digest": config_digest, "size": len(config)},
            "layers": [{"digest": "sha256:" + "f" * 64, "size": 5}],
            "annotations": {"a": "b"},
        },
    )
    Tag.create(repository=repo, name="v1", manifest=m)
    detail = browse.manifest_detail(registry, repo, m.digest, store)
    assert detail["tags"] == ["v1"] and detail["annotations"] == {"a": "b"} and detail["size"] == len(config) + 5
    assert detail["config"]["present"] and not detail["layers"][0]["present"]
    assert detail["config"]["image"]["entrypoint"] == ["/app"] and detail["config"]["image"]["labels"] == {"team": "a"}
    with pytest.raises(RegistryError, match="by digest"):
        browse.manifest_detail(registry, repo, "v1", store)
    with pytest.raises(RegistryError, match="NOT_FOUND"):
        browse.manifest_detail(registry, repo, "sha256:" + "0" * 64, store)


@pytest.mark.parametrize("config_bytes", [b"[" * 100_000, b"\xff\xfe", b"[1, 2]", b"not json"])
def test_a_config_a_pusher_wrote_badly_has_no_preview(world, config_bytes):
    registry, store = world
    repo = _repo(registry, "app", blob_size=1)
    digest = _put_blob(store, registry, config_bytes)
    m = _manifest(repo, {"config": {"digest": digest, "size": len(config_bytes)}, "layers": []})
    assert browse.manifest_detail(registry, repo, m.digest, store)["config"]["image"] is None
