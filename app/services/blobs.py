"""Blobs: what a repository may serve, cross-repository mounts, and unlinking."""

from __future__ import annotations

from datetime import timedelta

from app.db.models import Blob, Registry, Repository, RepositoryBlob, utcnow
from app.db.prepared import Prepared, to_models
from app.db.setup import blob_lock, serialize, transaction
from app.spec.errors import RegistryError
from app.storage.base import BlobReader, BlobStore, blob_key

_LINKED = Prepared(
    lambda repo, digest: (
        Blob.select().join(RepositoryBlob).where((RepositoryBlob.repository == repo) & (Blob.digest == digest))
    ),
    "is",
    Blob,
)

_NAMED = Prepared(
    lambda registry, name, digest: (
        Repository.select(Repository, Blob)
        .join(RepositoryBlob, on=(RepositoryBlob.repository == Repository.id))
        .join(Blob, on=(Blob.id == RepositoryBlob.blob))
        .where((Repository.registry == registry) & (Repository.name == name) & (Blob.digest == digest))
    ),
    "iss",
)


# How long a pull redirect's signed URL stays valid: long enough for a client to follow it.
REDIRECT_EXPIRY = timedelta(minutes=5)
# A blob's `touched_at` is refreshed when it is checked or mounted at most this often (one write
# per blob per interval, not one per HEAD), and always well inside garbage collection's grace
# period: a blob whose touch was skipped as recent enough is never old enough to collect.
TOUCH_EVERY = timedelta(seconds=60)


def touch_interval(gc_grace: timedelta | None) -> timedelta:
    """How often a wanted blob's `touched_at` is refreshed, given garbage collection's grace."""
    return min(TOUCH_EVERY, gc_grace / 4) if gc_grace is not None else TOUCH_EVERY


def touch(blob: Blob, every: timedelta = TOUCH_EVERY) -> bool:
    """Mark a blob as just wanted: a client that checked it may name it in a manifest next.
    False when the row is gone (collected since it was read): the caller must then answer as
    if it never was, so the client uploads it again rather than trusting a blob that is gone."""
    now = utcnow()
    if (blob.touched_at or blob.created_at) >= now - every:
        return True
    # On PostgreSQL this waits for a collection holding the row; on SQLite for its transaction.
    touched = Blob.update(touched_at=now).where(Blob.id == blob.id).execute()
    blob.touched_at = now
    return touched == 1


class BlobService:
    def __init__(self, store: BlobStore, redirect: bool = False, gc_grace: timedelta | None = None) -> None:
        self.store = store
        self.redirect = redirect
        self.touch_every = touch_interval(gc_grace)

    def find(self, repository: Repository, digest: str) -> Blob | None:
        """The blob if it is linked to this repository (and still there: see `touch`)."""
        blob = _LINKED.first(repository.id, digest)
        if blob is not None and not touch(blob, self.touch_every):
            return None
        return blob

    def find_in(self, registry: Registry, name: str, digest: str) -> tuple[Repository, Blob] | None:
        """The repository `name` and the blob linked to it, in one query (a pull's); None when
        either is missing (or the blob was collected since: see `touch`)."""
        rows = _NAMED.rows(registry.id, name, digest)
        if not rows:
            return None
        repository, blob = to_models(rows[0], Repository, Blob)
        if not touch(blob, self.touch_every):
            return None
        return repository, blob

    def get(self, repository: Repository, digest: str) -> Blob:
        blob = self.find(repository, digest)
        if blob is None:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found", detail={"digest": digest})
        return blob

    def open(self, repository: Repository, blob: Blob) -> BlobReader:
        try:
            return self.store.open_blob(blob_key(repository.registry_id, blob.digest))
        except FileNotFoundError:
            # Metadata without bytes: report unknown rather than fail, the bytes are gone.
            raise RegistryError("BLOB_UNKNOWN", f"blob {blob.digest} is missing from storage") from None

    def redirect_url(self, repository: Repository, blob: Blob) -> str | None:
        """Where a client may fetch the blob's bytes itself (a signed URL), when redirects are
        on and the store can sign; None means the service streams the blob."""
        if not self.redirect:
            return None
        return self.store.signed_url(blob_key(repository.registry_id, blob.digest), REDIRECT_EXPIRY)

    def link(self, repository: Repository, blob: Blob) -> None:
        RepositoryBlob.insert(repository=repository, blob=blob, created_at=utcnow()).on_conflict_ignore().execute()

    def mount(self, target: Repository, digest: str, source: Repository | None) -> Blob | None:
        """Link a blob already in this registry into `target`; None when there is nothing to mount.

        With a source repository the blob must be linked there. Without one (OCI 1.1 lets a
        registry mount without `from`), any blob of the same registry will do: the caller's
        rights cover every repository of the registry (app.auth.gate.may_pull_every_repository).
        Under the blob's lock, which garbage collection takes: a mount and a collection of the
        same blob never interleave (the client falls back to uploading when it lost).
        """
        with transaction():
            serialize(blob_lock(target.registry_id, digest))
            if source is not None:
                blob = self.find(source, digest)
            else:
                blob = Blob.get_or_none((Blob.registry == target.registry_id) & (Blob.digest == digest))
                if blob is not None and not touch(blob, self.touch_every):
                    blob = None
            if blob is None:
                return None
            self.link(target, blob)
            return blob

    def unlink(self, repository: Repository, digest: str) -> None:
        """DELETE of a blob: the repository stops serving it. Bytes go with garbage collection."""
        blob = self.get(repository, digest)
        RepositoryBlob.delete().where(
            (RepositoryBlob.repository == repository) & (RepositoryBlob.blob == blob)
        ).execute()
