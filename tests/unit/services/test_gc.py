"""Garbage collection on a real SQLite database and a real filesystem store: what a tag reaches
stays (index children, referrers), what nothing reaches goes once past the grace period (its
bytes too), bytes without a row go, and a dry run reports the same and deletes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest

from app.db.models import Blob, Manifest, ManifestReference, Organization, Registry, Repository, Tag, utcnow
from app.services import gc
from app.storage.base import blob_key
from app.storage.filesystem import FilesystemStore

OLD = utcnow() - dt.timedelta(days=2)
GRACE = dt.timedelta(hours=1)


class Row:
    def __init__(self, id, digest, subject=None):
        self.id, self.digest, self.subject = id, digest, subject


def test_reachable_follows_index_children_and_referrers_only_from_the_roots():
    rows = [
        Row(1, "index"),
        Row(2, "child"),
        Row(3, "sig", subject="index"),
        Row(4, "sig-of-sig", subject="sig"),
        Row(5, "orphan"),
        Row(6, "orphan-sig", subject="orphan"),
    ]
    assert gc.reachable(rows, {1}, {1: ["child", "absent"]}) == {1, 2, 3, 4}
    assert gc.reachable(rows, set(), {1: ["child"]}) == set()
    assert gc.reachable(rows, {2}, {2: ["index"], 1: ["child"]}) == {1, 2, 3, 4}  # a cycle ends


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def registry(database, tmp_path):
    store = FilesystemStore(tmp_path / "blobs")
    registry = Registry.create(org=Organization.create(name="o"), name="r")
    return registry, store


def _blob(registry, store, data: bytes, touched=OLD) -> str:
    digest = _digest(data)
    upload = str(uuid.uuid4())
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(data)
    store.commit_upload(upload, blob_key(registry.id, digest), len(data))
    Blob.create(registry=registry, digest=digest, size=len(data), created_at=touched, touched_at=touched)
    return digest


def _manifest(repository, name: str, blobs=(), children=(), subject=None, created=OLD) -> Manifest:
    m = Manifest.create(
        repository=repository,
        digest=_digest(name.encode()),
        media_type="x",
        size=1,
        content=b"{}",
        subject=subject,
        created_at=created,
    )
    for d in blobs:
        ManifestReference.create(manifest=m, digest=d, kind="blob")
    for d in children:
        ManifestReference.create(manifest=m, digest=d, kind="manifest")
    return m


def test_what_a_tag_reaches_stays_and_the_rest_goes_with_its_bytes(registry):
    registry, store = registry
    repo = Repository.create(registry=registry, name="app")
    kept_layer, lost_layer, fresh_layer = (
        _blob(registry, store, b"kept"),
        _blob(registry, store, b"lost"),
        _blob(registry, store, b"fresh", touched=utcnow()),
    )
    child = _manifest(repo, "child", blobs=[kept_layer])
    index = _manifest(repo, "index", children=[child.digest])
    Tag.create(repository=repo, name="latest", manifest=index)
    signature = _manifest(repo, "sig", subject=index.digest)
    old = _manifest(repo, "old", blobs=[lost_layer])
    recent = _manifest(repo, "recent", created=utcnow())

    report = gc.collect(registry, store, grace=GRACE)

    assert [m["digest"] for m in report.manifests] == [old.digest]
    assert {m.id for m in Manifest.select()} == {child.id, index.id, signature.id, recent.id}
    assert [b["digest"] for b in report.blobs] == [lost_layer] and report.bytes_freed == 4
    assert store.blob_size(blob_key(registry.id, lost_layer)) is None
    assert store.blob_size(blob_key(registry.id, kept_layer)) == 4
    assert store.blob_size(blob_key(registry.id, fresh_layer)) == 5


def test_a_dry_run_reports_what_a_run_would_delete_and_deletes_nothing(registry):
    registry, store = registry
    repo = Repository.create(registry=registry, name="app")
    layer = _blob(registry, store, b"layer")
    _manifest(repo, "untagged", blobs=[layer])
    orphan = str(uuid.uuid4())
    store.create_upload(orphan)
    store.commit_upload(orphan, blob_key(registry.id, _digest(b"orphan")), 0)  # bytes a crash left rowless

    dry = gc.collect(registry, store, grace=GRACE, dry_run=True)
    assert (len(dry.manifests), [b["digest"] for b in dry.blobs], dry.orphan_files) == (1, [layer], 1)
    assert Manifest.select().count() == 1 and Blob.select().count() == 1
    assert store.blob_size(blob_key(registry.id, layer)) == 5

    real = gc.collect(registry, store, grace=GRACE)
    assert (real.manifests, real.blobs, real.orphan_files) == (dry.manifests, dry.blobs, dry.orphan_files)
    assert list(store.list_blobs(f"{registry.id}/")) == []


def test_the_periodic_collector_skips_registries_being_deleted(registry):
    registry, store = registry
    _blob(registry, store, b"x")
    deleting = Registry.create(org=registry.org, name="going", status="deleting")
    _blob(deleting, store, b"y")
    reports = gc.Collector(store, interval=dt.timedelta(0), grace=GRACE, upload_expiry=dt.timedelta(days=1)).run_once()
    assert [r.registry for r in reports] == ["r"] and Blob.select().where(Blob.registry == deleting).count() == 1
