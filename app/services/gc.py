"""Online garbage collection: what no tag can reach goes, while the registry keeps serving.

Per registry:
1. Manifests. Reachable are the tagged ones, the children of a reachable index, and the
   referrers of a reachable manifest (signatures, SBOMs: they live as long as their subject).
   Manifests pushed within the grace period are reachable too: an index's children arrive
   before the index, untagged. The rest are deleted, one repository at a time, under the
   repository's lock (the one manifest pushes and deletes take), with reachability computed
   again inside it.
2. Blobs. A blob no manifest of the registry references, and that nobody pushed, mounted,
   checked or referenced within the grace period (`Blob.touched_at`), is deleted with its bytes,
   under the blob's lock (the one an upload takes to publish the same digest), after checking
   once more inside that lock. A manifest push touches the blobs it names inside its own
   transaction, so it and a collection can never both succeed on the same blob.
3. Bytes without a row (left by a crash mid-publish) are deleted, under the blob's lock.
4. Upload sessions idle past the upload expiry are cancelled, and with them a repository row
   that only they kept (one nothing was ever committed to: app/services/repositories.py). The
   server's upload reaper does this far more often (app/services/upload_expiry.py).

A push that takes longer than the grace period between uploading a blob and pushing the
manifest that names it can lose that blob (the manifest push then fails with
MANIFEST_BLOB_UNKNOWN and the client uploads it again): keep the grace period well above any
push's duration (default: an hour).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import peewee as pw

from app.db.models import Blob, Manifest, ManifestReference, Registry, Repository, Tag, utcnow
from app.db.setup import blob_lock, is_postgres, repository_lock, serialize, transaction
from app.services import upload_expiry
from app.services.periodic import Periodic
from app.storage.base import BlobStore, blob_key

log = logging.getLogger("berth.gc")


@dataclass
class Report:
    registry: str
    dry_run: bool
    manifests: list[dict] = field(default_factory=list)  # {"repository", "digest"}
    blobs: list[dict] = field(default_factory=list)  # {"digest", "size"}
    orphan_files: int = 0
    expired_uploads: int = 0

    @property
    def bytes_freed(self) -> int:
        return sum(b["size"] for b in self.blobs)


def collect(
    registry: Registry,
    store: BlobStore,
    *,
    grace: dt.timedelta,
    dry_run: bool = False,
    upload_expiry: dt.timedelta = dt.timedelta(days=1),
) -> Report:
    report = Report(registry=registry.name, dry_run=dry_run)
    cutoff = utcnow() - grace
    doomed: set[int] = set()  # manifests deleted (or, in a dry run, that would be)
    # Read whole before writing: an open SQLite cursor would pin a read snapshot that a write
    # transaction on the same connection cannot upgrade from.
    for repository in list(Repository.select().where(Repository.registry == registry).order_by(Repository.id)):
        doomed |= _collect_manifests(repository, cutoff, dry_run, report)
    _collect_blobs(registry, store, cutoff, dry_run, report, doomed)
    _collect_orphan_files(registry, store, dry_run, report)
    _expire_uploads(registry, store, utcnow() - upload_expiry, dry_run, report)
    log.info(
        "garbage collection of %s: %d manifests, %d blobs (%d bytes), %d orphan files, %d uploads%s",
        registry.name,
        len(report.manifests),
        len(report.blobs),
        report.bytes_freed,
        report.orphan_files,
        report.expired_uploads,
        " (dry run)" if dry_run else "",
        extra={"registry": registry.name, "dry_run": dry_run},
    )
    return report


# --- manifests ---------------------------------------------------------------------------------


def reachable(manifests: Iterable, roots: set[int], children: Mapping[int, Sequence[str]]) -> set[int]:
    """The ids of the manifests reachable from `roots`: through index children (digests in
    `children[id]`) and referrers (manifests whose `subject` is a reachable digest). The one rule
    of what stays, for garbage collection and retention alike. `manifests` carry id, digest,
    subject."""
    rows = list(manifests)
    by_digest = {m.digest: m for m in rows}
    referrers: dict[str, list] = defaultdict(list)
    for m in rows:
        if m.subject:
            referrers[m.subject].append(m)
    pending = [m for m in rows if m.id in roots]
    found = {m.id for m in pending}
    while pending:
        m = pending.pop()
        for nxt in [by_digest.get(d) for d in children.get(m.id, ())] + referrers.get(m.digest, []):
            if nxt is not None and nxt.id not in found:
                found.add(nxt.id)
                pending.append(nxt)
    return found


def unreachable_manifests(repository: Repository, cutoff: dt.datetime) -> list[Manifest]:
    """Manifests of `repository` that no tag reaches (see the module docstring), pushed before
    `cutoff`."""
    rows = list(
        Manifest.select(Manifest.id, Manifest.digest, Manifest.subject, Manifest.created_at).where(
            Manifest.repository == repository
        )
    )
    if not rows:
        return []
    children: dict[int, list[str]] = defaultdict(list)
    for manifest_id, digest in (
        ManifestReference.select(ManifestReference.manifest, ManifestReference.digest)
        .join(Manifest)
        .where((Manifest.repository == repository) & (ManifestReference.kind == "manifest"))
        .tuples()
    ):
        children[manifest_id].append(digest)
    tagged = {manifest_id for (manifest_id,) in Tag.select(Tag.manifest).where(Tag.repository == repository).tuples()}
    roots = {m.id for m in rows if m.id in tagged or m.created_at >= cutoff}
    keep = reachable(rows, roots, children)
    return [m for m in rows if m.id not in keep]


def _collect_manifests(repository: Repository, cutoff: dt.datetime, dry_run: bool, report: Report) -> set[int]:
    if dry_run:
        doomed = unreachable_manifests(repository, cutoff)
    else:
        with transaction():
            serialize(repository_lock(repository.id))
            doomed = unreachable_manifests(repository, cutoff)
            if doomed:
                Manifest.delete().where(Manifest.id.in_([m.id for m in doomed])).execute()
    report.manifests += [{"repository": repository.name, "digest": m.digest} for m in doomed]
    return {m.id for m in doomed}


# --- blobs -------------------------------------------------------------------------------------


def _referenced(registry: Registry) -> pw.SelectQuery:
    return (
        ManifestReference.select(ManifestReference.digest)
        .join(Manifest)
        .join(Repository)
        .where((Repository.registry == registry) & (ManifestReference.kind == "blob"))
    )


def _touched_before(cutoff: dt.datetime) -> pw.Expression:
    return pw.fn.COALESCE(Blob.touched_at, Blob.created_at) < cutoff


def _collect_blobs(
    registry: Registry, store: BlobStore, cutoff: dt.datetime, dry_run: bool, report: Report, doomed: set[int]
) -> None:
    references = _referenced(registry)
    if dry_run and doomed:  # the manifests a real run would delete first reference nothing
        references = references.where(ManifestReference.manifest.not_in(sorted(doomed)))
    referenced = {d for (d,) in references.tuples()}
    candidates = [
        (b.id, b.digest, b.size)
        for b in Blob.select(Blob.id, Blob.digest, Blob.size).where(
            (Blob.registry == registry) & _touched_before(cutoff)
        )
        if b.digest not in referenced
    ]
    for blob_id, digest, size in candidates:
        if dry_run:
            report.blobs.append({"digest": digest, "size": size})
            continue
        with transaction():
            serialize(blob_lock(registry.id, digest))
            query = Blob.select(Blob.id).where(
                (Blob.id == blob_id)
                & _touched_before(cutoff)
                & ~pw.fn.EXISTS(_referenced(registry).where(ManifestReference.digest == digest))
            )
            if is_postgres():
                query = query.for_update()
            if query.first() is None:
                continue  # pushed, referenced or touched since: keep it
            Blob.delete().where(Blob.id == blob_id).execute()  # and its repository links
            store.delete_blob(blob_key(registry.id, digest))  # a failure here rolls the row back
        report.blobs.append({"digest": digest, "size": size})


def _collect_orphan_files(registry: Registry, store: BlobStore, dry_run: bool, report: Report) -> None:
    known = {d for (d,) in Blob.select(Blob.digest).where(Blob.registry == registry).tuples()}
    for key, _size in store.list_blobs(f"{registry.id}/"):
        _, algorithm, _, encoded = key.split("/")
        digest = f"{algorithm}:{encoded}"
        if digest in known:
            continue
        if dry_run:
            report.orphan_files += 1
            continue
        with transaction():
            serialize(blob_lock(registry.id, digest))
            if Blob.select().where((Blob.registry == registry) & (Blob.digest == digest)).exists():
                continue  # published since the listing
            store.delete_blob(key)
        report.orphan_files += 1


def _expire_uploads(registry: Registry, store: BlobStore, before: dt.datetime, dry_run: bool, report: Report) -> None:
    report.expired_uploads += upload_expiry.expire_idle(store, before, registry=registry, dry_run=dry_run)


# --- the periodic run ------------------------------------------------------------------------


class Collector(Periodic):
    """Runs `collect` over every serving registry every `interval`, in a background thread of
    `berth serve`. Replicas may each run one: a collection is safe alongside another."""

    thread_name = "garbage-collector"

    def __init__(
        self, store: BlobStore, *, interval: dt.timedelta, grace: dt.timedelta, upload_expiry: dt.timedelta
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.grace = grace
        self.upload_expiry = upload_expiry

    def run_once(self) -> list[Report]:
        reports = []
        for registry in list(Registry.select().where(Registry.status != "deleting").order_by(Registry.id)):
            if self.stopping:
                break
            reports.append(collect(registry, self.store, grace=self.grace, upload_expiry=self.upload_expiry))
        return reports
