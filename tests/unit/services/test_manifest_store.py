"""What a manifest push writes, on a real SQLite database: the blobs it names are touched unless
touched very recently, a new manifest is inserted once with its references, tags move and say
what they moved from, and the audit hook runs inside the push's transaction."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.db.models import (
    AuditEvent,
    Blob,
    Manifest,
    ManifestReference,
    Organization,
    Registry,
    Repository,
    RepositoryBlob,
    Tag,
    utcnow,
)
from app.db.setup import open_database
from app.services import audit
from app.services.manifests import ManifestService
from app.spec import digests
from app.spec import media_types as mt
from app.spec.errors import RegistryError

CONFIG, LAYER = "sha256:" + "c" * 64, "sha256:" + "d" * 64


@pytest.fixture
def world(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    org = Organization.create(name="o")
    registry = Registry.create(org=org, name="r")
    repository = Repository.create(registry=registry, name="app")
    for digest in (CONFIG, LAYER):
        blob = Blob.create(registry=registry, digest=digest, size=1)
        RepositoryBlob.create(repository=repository, blob=blob)
    yield org, registry, repository
    db.close()


def image(n: int = 0) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG, "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": LAYER, "size": 1}],
            "annotations": {"n": str(n)},
        }
    ).encode()


def touched(digest: str) -> dt.datetime:
    return Blob.get(Blob.digest == digest).touched_at


def test_named_blobs_are_touched_unless_touched_within_the_interval(world):
    _, registry, _ = world
    service = ManifestService(1 << 20, touch_every=dt.timedelta(seconds=60))
    recent, stale = utcnow() - dt.timedelta(seconds=10), utcnow() - dt.timedelta(minutes=5)
    Blob.update(touched_at=recent).where(Blob.digest == CONFIG).execute()
    Blob.update(touched_at=stale).where(Blob.digest == LAYER).execute()
    service.put(registry, "app", "v1", mt.OCI_MANIFEST, image())
    assert touched(CONFIG) == recent  # left alone (and unlocked): recent enough for any collection
    assert touched(LAYER) > stale + dt.timedelta(minutes=4)  # refreshed
    # A blob never touched (touched_at null: rows older than the column) counts from its creation.
    Blob.update(touched_at=None, created_at=stale).where(Blob.digest == CONFIG).execute()
    service.put(registry, "app", "v2", mt.OCI_MANIFEST, image(2))
    assert touched(CONFIG) is not None and touched(CONFIG) > stale


def test_a_push_stores_the_manifest_once_and_moves_its_tag(world):
    _, registry, repository = world
    service = ManifestService(1 << 20)
    first = service.put(registry, "app", "v1", mt.OCI_MANIFEST, image(1))
    assert first.replaced == {} and first.digest == str(digests.of_bytes(image(1)))
    again = service.put(registry, "app", "v1", mt.OCI_MANIFEST, image(1))  # the same push again
    assert again.id == first.id and again.replaced == {}
    second = service.put(registry, "app", "v1", mt.OCI_MANIFEST, image(2))
    assert second.replaced == {"v1": first.digest}
    assert Manifest.select().where(Manifest.repository == repository).count() == 2
    refs = ManifestReference.select().where(ManifestReference.manifest == first.id)
    assert sorted((r.digest, r.kind) for r in refs) == [(CONFIG, "blob"), (LAYER, "blob")]  # once, not twice
    assert Tag.get(Tag.name == "v1").manifest_id == second.id
    stored = service.get(repository, first.digest)
    assert bytes(stored.content) == image(1) and stored.media_type == mt.OCI_MANIFEST


def test_the_audit_hook_runs_inside_the_push_and_its_failure_undoes_it(world):
    org, registry, repository = world
    service = ManifestService(1 << 20)
    seen = []

    def record(manifest):
        seen.append(manifest.digest)
        audit.write(org_id=org.id, actor="t", action="manifest.push", status=201, digest=manifest.digest)

    pushed = service.put(registry, "app", "v1", mt.OCI_MANIFEST, image(1), audit=record)
    assert seen == [pushed.digest] and AuditEvent.get().digest == pushed.digest

    def refuse(manifest):
        raise RegistryError("UNAVAILABLE", "no audit trail today")

    with pytest.raises(RegistryError):
        service.put(registry, "app", "v2", mt.OCI_MANIFEST, image(2), audit=refuse)
    assert Tag.get_or_none(Tag.name == "v2") is None
    assert Manifest.select().where(Manifest.repository == repository).count() == 1
    assert AuditEvent.select().count() == 1


def test_a_pull_finds_the_repository_and_its_manifest_in_its_own_registry_only(world):
    """`find_in` (a pull's one query): by tag and by digest, in the registry asked about and no
    other, even where another registry has a repository of the same name and the same tag."""
    from app.services.blobs import BlobService

    org, registry, repository = world
    service = ManifestService(max_bytes=1 << 20)
    mine = service.put(registry, "app", "v1", mt.OCI_MANIFEST, image(1))
    other = Registry.create(org=org, name="other")
    theirs_repo = Repository.create(registry=other, name="app")
    for digest in (CONFIG, LAYER):
        RepositoryBlob.create(repository=theirs_repo, blob=Blob.create(registry=other, digest=digest, size=1))
    theirs = service.put(other, "app", "v1", mt.OCI_MANIFEST, image(2))

    found_repo, found = service.find_in(registry, "app", "v1")
    assert (found_repo.id, found.digest, bytes(found.content)) == (repository.id, mine.digest, image(1))
    assert service.find_in(other, "app", "v1")[1].digest == theirs.digest
    assert service.find_in(registry, "app", mine.digest)[1].id == mine.id
    assert service.find_in(registry, "app", theirs.digest) is None  # their manifest, not in this registry
    assert service.find_in(registry, "nope", "v1") is None and service.find_in(registry, "app", "v2") is None
    assert service.find_in(registry, "app", "not a reference!") is None

    blobs = BlobService(store=None)
    linked_repo, blob = blobs.find_in(registry, "app", LAYER)
    assert linked_repo.id == repository.id and blob.registry_id == registry.id
    assert blobs.find_in(other, "app", LAYER)[1].registry_id == other.id
    assert blobs.find_in(registry, "nope", LAYER) is None
