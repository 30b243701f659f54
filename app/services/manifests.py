"""Manifests: strict validation on push, lookup by tag or digest, delete.

Rules, once: the Content-Type must be a known manifest type and agree with the body's
`mediaType`; the body must be a well-formed manifest of that type; everything it references
must already be in the repository (non-distributable layers excepted), unless the registry's
manifest policy lets it be absent (app/services/manifest_policy.py); a push by digest must hash
to that digest.

A push by digest may also name tags, `?tag=a&tag=b` (distribution-spec, "Pushing Manifests"):
each is checked as a tag, at most MAX_TAGS_PER_PUSH of them, and they are applied in the
manifest's own transaction under the same write policy as a push by tag (immutable tags
included), so a refusal of any one leaves nothing stored: no manifest, no tag.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import peewee as pw
from peewee import EXCLUDED

from app import untrusted_json
from app.db.models import Blob, Manifest, ManifestReference, Registry, Repository, RepositoryBlob, Tag, utcnow
from app.db.prepared import Prepared, PreparedFamily, to_models
from app.db.setup import repository_lock, serialize, serialize_tags, transaction
from app.services import blobs, immutable_tags, listings, manifest_policy, repositories
from app.spec import digests
from app.spec import media_types as mt
from app.spec.errors import RegistryError
from app.spec.names import TAG, check_tag, is_tag

# The spec asks a registry to take at least 10 tags per push and lets it answer 414 past its
# limit. 50 covers every real release scheme (1.2.3, 1.2, 1, latest, a date, a commit...) and
# bounds the rows one request writes in one transaction; it also keeps the answer, an `OCI-Tag`
# line per tag beside the other headers, under the 100 header lines Python's http.client takes.
MAX_TAGS_PER_PUSH = 50


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    blobs: list[str]  # digests of config and distributable layers
    children: list[str]  # digests of manifests an index points at
    subject: str | None
    artifact_type: str | None
    annotations: dict | None
    platforms: list[str | None] = field(default_factory=list)  # each child's os/arch[/variant], by position


def _invalid(message: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message)


def _descriptor(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise _invalid(f"{where}.digest must be a string")
    try:
        digests.parse(digest)
    except RegistryError as e:
        raise _invalid(f"{where}.digest: {e.message}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    return value


def parse_manifest(
    content_type: str | None, body: bytes, *, max_depth: int = untrusted_json.DEFAULT_MAX_DEPTH
) -> ParsedManifest:
    """Validate a manifest body against its Content-Type; raise MANIFEST_INVALID otherwise."""
    media_type = mt.base(content_type)
    if media_type not in mt.MANIFESTS:
        raise _invalid(
            f"unsupported manifest Content-Type {media_type or '(none)'!r}; use one of {sorted(mt.MANIFESTS)}"
        )
    try:
        doc = untrusted_json.loads(body, max_depth=max_depth)
    except untrusted_json.UntrustedJsonError as e:
        raise _invalid(f"manifest {e}") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    declared = doc.get("mediaType")
    if declared is None:
        if media_type not in (mt.OCI_MANIFEST, mt.OCI_INDEX):
            raise _invalid(f"{media_type} manifests must declare mediaType")
    elif declared != media_type:
        raise _invalid(f"Content-Type {media_type!r} does not match the manifest's mediaType {declared!r}")

    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    annotations = doc.get("annotations")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        raise _invalid("annotations must map strings to strings")
    subject = None
    if "subject" in doc:
        subject = _descriptor(doc["subject"], "subject")["digest"]

    blobs: list[str] = []
    children: list[str] = []
    platforms: list[str | None] = []
    if media_type in mt.IMAGE_MANIFESTS:
        if "manifests" in doc:
            raise _invalid("an image manifest has no 'manifests'; is this an index?")
        config = _descriptor(doc.get("config"), "config")
        blobs.append(config["digest"])
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        for i, layer in enumerate(layers):
            layer = _descriptor(layer, f"layers[{i}]")
            if layer["mediaType"] not in mt.NON_DISTRIBUTABLE_LAYERS:
                blobs.append(layer["digest"])
        if artifact_type is None and config["mediaType"] != mt.EMPTY_JSON:
            # The referrers API reports the config's type for manifests without artifactType.
            artifact_type = config["mediaType"]
    else:
        if "layers" in doc or "config" in doc:
            raise _invalid("an index has no 'config' or 'layers'; is this an image manifest?")
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise _invalid("manifests must be a list")
        for i, entry in enumerate(entries):
            children.append(_descriptor(entry, f"manifests[{i}]")["digest"])
            platforms.append(manifest_policy.platform_name(entry.get("platform")))
    return ParsedManifest(media_type, blobs, children, subject, artifact_type, annotations, platforms)


_BY_DIGEST = Prepared(
    lambda repo, digest: Manifest.select().where((Manifest.repository == repo) & (Manifest.digest == digest)),
    "is",
    Manifest,
)
_BY_TAG = Prepared(
    lambda repo, tag: (
        Manifest.select()
        .join(Tag, on=(Tag.manifest == Manifest.id))
        .where((Tag.repository == repo) & (Tag.name == tag))
    ),
    "is",
    Manifest,
)

# A pull's one query: the repository by name and its manifest by digest or by tag (`find_in`).
_NAMED_BY_DIGEST = Prepared(
    lambda registry, name, digest: (
        Repository.select(Repository, Manifest)
        .join(Manifest, on=(Manifest.repository == Repository.id))
        .where((Repository.registry == registry) & (Repository.name == name) & (Manifest.digest == digest))
    ),
    "iss",
)
_NAMED_BY_TAG = Prepared(
    lambda registry, name, tag: (
        Repository.select(Repository, Manifest)
        .join(Tag, on=(Tag.repository == Repository.id))
        .join(Manifest, on=(Manifest.id == Tag.manifest))
        .where((Repository.registry == registry) & (Repository.name == name) & (Tag.name == tag))
    ),
    "iss",
)


# The push's statements (ManifestService._store).
_INSERT = Prepared(
    lambda repo, digest, media_type, artifact_type, subject, size, content, annotations, created: (
        Manifest.insert(
            repository=repo, digest=digest, media_type=media_type, artifact_type=artifact_type, subject=subject,
            size=size, content=content, annotations=annotations, created_at=created,
        )
        .on_conflict_ignore()
        .returning(Manifest.id)
    ),
    "isssssbss",
)  # fmt: skip
_HAS_REFERENCES = Prepared(
    lambda m: ManifestReference.select(ManifestReference.id).where(ManifestReference.manifest == m).limit(pw.SQL("1")),
    "i",
)
_INSERT_REFERENCES = PreparedFamily(
    lambda n: (
        lambda *v: ManifestReference.insert_many(
            [{"manifest": v[3 * i], "digest": v[3 * i + 1], "kind": v[3 * i + 2]} for i in range(n)]
        )
    ),
    lambda n: "iss" * n,
)
_SET_TAG = Prepared(
    lambda repo, tag, manifest, now: Tag.insert(
        repository=repo, name=tag, manifest=manifest, updated_at=now
    ).on_conflict(
        conflict_target=[Tag.repository, Tag.name],
        update={Tag.manifest: EXCLUDED.manifest_id, Tag.updated_at: EXCLUDED.updated_at},
    ),
    "isis",
)
_TOUCH_BLOBS = PreparedFamily(
    lambda n: (
        lambda now, registry, recent, *d: Blob.update(touched_at=now).where(
            (Blob.registry == registry)
            & Blob.digest.in_(d)
            & (pw.fn.COALESCE(Blob.touched_at, Blob.created_at) < recent)
        )
    ),
    lambda n: "sis" + "s" * n,
)


def _before_insert(blobs: int, children: int, tags: int):
    """The push's one read before its insert, as a union of what is asked for: which of `blobs`
    are linked to the repository (kind 0), which of `children` are manifests in it (kind 1), and
    what each of `tags` points at now (kind 2, with the tag): rows (kind, tag or '', digest). Its
    arguments: for each part asked for, the repository's id, then the part's digests or tags."""

    def build(*values):
        parts, at = [], 0
        if blobs:
            repo, wanted, at = values[at], values[at + 1 : at + 1 + blobs], at + 1 + blobs
            parts.append(
                Blob.select(pw.SQL("0"), pw.SQL("''"), Blob.digest)
                .join(RepositoryBlob)
                .where((RepositoryBlob.repository == repo) & Blob.digest.in_(wanted))
            )
        if children:
            repo, wanted, at = values[at], values[at + 1 : at + 1 + children], at + 1 + children
            parts.append(
                Manifest.select(pw.SQL("1"), pw.SQL("''"), Manifest.digest).where(
                    (Manifest.repository == repo) & Manifest.digest.in_(wanted)
                )
            )
        if tags:
            repo, names = values[at], values[at + 1 : at + 1 + tags]
            parts.append(
                Manifest.select(pw.SQL("2"), Tag.name, Manifest.digest)
                .join(Tag, on=(Tag.manifest == Manifest.id))
                .where((Tag.repository == repo) & Tag.name.in_(names))
            )
        query = parts[0]
        for part in parts[1:]:
            query = query.union_all(part)
        return query

    return build


_BEFORE_INSERT = PreparedFamily(_before_insert, lambda *counts: "".join("i" + "s" * n for n in counts if n))


def tag_parameters(reference: str, values: list[str]) -> list[str]:
    """The `tag` query parameters of a manifest push, checked: only with a push by digest, at most
    MAX_TAGS_PER_PUSH, each a whole tag. A tag named twice is applied (and reported) once."""
    if not values:
        return []
    if not digests.is_digest(reference):
        # The spec defines tag parameters for a push by digest only; a push by tag that named
        # more tags would otherwise be taken for one that applied them.
        raise _invalid(
            f"tag parameters go with a push by digest (PUT .../manifests/<digest>?tag=...), "
            f"not a push by tag {reference[:200]!r}"
        )
    tags = list(dict.fromkeys(values))
    if len(tags) > MAX_TAGS_PER_PUSH:
        raise RegistryError(
            "MANIFEST_INVALID",
            f"{len(tags)} tag parameters: at most {MAX_TAGS_PER_PUSH} per push; push the rest in another request",
            status=414,
            detail={"max_tags": MAX_TAGS_PER_PUSH},
        )
    for tag in tags:
        if not TAG.fullmatch(tag):
            raise _invalid(
                f"tag parameter {tag[:200]!r} is not a tag: up to 128 characters of "
                "[A-Za-z0-9_.-], not starting with '.' or '-'; nothing was stored"
            )
    return tags


class ManifestService:
    def __init__(
        self,
        max_bytes: int,
        max_depth: int = untrusted_json.DEFAULT_MAX_DEPTH,
        tag_lists: listings.TagLists | None = None,
        touch_every: dt.timedelta = blobs.TOUCH_EVERY,
    ) -> None:
        self.max_bytes = max_bytes
        self.touch_every = touch_every  # how recent a touch of a named blob is left as it is
        self.max_depth = max_depth
        self.tag_lists = tag_lists if tag_lists is not None else listings.TagLists()

    def put(
        self,
        registry: Registry,
        name: str,
        reference: str,
        content_type: str | None,
        body: bytes,
        *,
        immutable: bool = False,
        tags: Sequence[str] = (),
        audit: Callable[[Manifest], None] | None = None,
    ) -> Manifest:
        """Store a manifest in the repository `name`, moving `reference` when it is a tag, and each
        of `tags` (a push by digest's tag parameters); with `immutable` (the repository matches one
        of the registry's immutable-tag patterns) an existing tag never moves. A new repository is
        created with the manifest, in the same transaction: a refused manifest leaves no
        repository behind. The result carries `applied_tags` and `replaced` (tag -> the digest
        it moved away from). `audit(manifest)` is called inside the push's transaction, once
        the tags are applied, to write the push's audit record with it."""
        extra = tag_parameters(reference, list(tags))
        if len(body) > self.max_bytes:
            raise RegistryError("MANIFEST_INVALID", f"manifest exceeds the {self.max_bytes}-byte limit", status=413)
        if digests.is_digest(reference):
            expected = digests.parse(reference)
            digest = digests.of_bytes(body, expected.algorithm)
            if digest != expected:
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"manifest content has digest {digest}, not {reference}",
                    detail={"digest": reference},
                )
            to_apply = extra
        else:
            to_apply = [check_tag(reference)]
            digest = digests.of_bytes(body)
        parsed = parse_manifest(content_type, body, max_depth=self.max_depth)
        return repositories.committing(
            registry,
            name,
            lambda found: self._store(registry, name, found, to_apply, str(digest), body, parsed, immutable, audit),
        )

    def _store(
        self,
        registry: Registry,
        name: str,
        repository: Repository | None,
        tags: list[str],
        digest: str,
        body: bytes,
        parsed: ParsedManifest,
        immutable: bool,
        audit: Callable[[Manifest], None] | None,
    ) -> Manifest:
        # Every statement here is compiled once (app/db/prepared.py): building SQL was most of a
        # push's CPU. The transaction is the push: the manifest, its references, its tags and
        # (through `audit`) its audit record commit together or not at all.
        with transaction():
            if repository is None:  # created here: a refusal below undoes it with the rest
                repository = repositories.create(registry, name)
            # Garbage collection of this repository (and a delete in it) waits for this push and
            # vice versa; what the manifest references is checked (and its blobs touched) inside,
            # so a collection can never remove a blob or child manifest between the check and the
            # insert. Pushes into one repository run side by side; pushes of one tag in turn.
            # Held back (`deferred`), as are the writes below whose results are not read: on
            # PostgreSQL they reach the server with the next read or the commit, so a push
            # costs a few round trips, not one per statement.
            serialize(repository_lock(repository.id), shared=True, deferred=True)
            serialize_tags(repository.id, tags, deferred=True)
            # One read: what the manifest references that is here, and where its tags point now.
            previous = self._check_references_and_read_tags(
                repository, parsed, manifest_policy.of(registry), [] if immutable else tags
            )
            now = utcnow()
            annotations = json.dumps(parsed.annotations) if parsed.annotations else None
            inserted = _INSERT.cursor(
                repository.id, digest, parsed.media_type, parsed.artifact_type, parsed.subject, len(body), body,
                annotations, now,
            ).fetchall()  # fmt: skip
            if inserted:  # new: nothing references from it yet
                manifest = Manifest(
                    id=inserted[0][0], repository=repository.id, digest=digest, media_type=parsed.media_type,
                    artifact_type=parsed.artifact_type, subject=parsed.subject, size=len(body), content=body,
                    annotations=annotations, created_at=now,
                )  # fmt: skip
                has_references = False
            else:  # pushed before: the stored row, and its references if they were recorded
                manifest = _BY_DIGEST.first(repository.id, digest)
                has_references = bool(_HAS_REFERENCES.rows(manifest.id))
            if not has_references:
                rows = [(manifest.id, d, "blob") for d in parsed.blobs]
                rows += [(manifest.id, d, "manifest") for d in parsed.children]
                if rows:
                    _INSERT_REFERENCES.of(len(rows)).send(*(v for r in rows for v in r))
            manifest.applied_tags = tags
            manifest.replaced = {}  # tag -> the digest the push moved it away from (audit)
            if immutable:
                for tag in tags:
                    # Raises inside the transaction when the tag is held by another digest: the
                    # manifest and the tags applied before it in this push are undone with it.
                    immutable_tags.pin(repository, tag, manifest)
            else:  # write policy: allow. A tag push moves the tag, whatever it pointed at before.
                for tag in tags:
                    if previous.get(tag, manifest.digest) != manifest.digest:
                        manifest.replaced[tag] = previous[tag]
            if audit is not None:
                audit(manifest)
            if not immutable:
                # Last: moving a tag raises the repository's tag version (a trigger), a row every
                # tag push into the repository updates, locked from here to the commit (on
                # PostgreSQL these go to the server in the commit's own message).
                for tag in tags:
                    _SET_TAG.send(repository.id, tag, manifest.id, now)
        if tags:
            self.tag_lists.changed(repository)
        return manifest

    def _check_references_and_read_tags(
        self, repository: Repository, parsed: ParsedManifest, policy: manifest_policy.Policy, tags: list[str]
    ) -> dict[str, str]:
        """MANIFEST_BLOB_UNKNOWN for what `parsed` references that is not in `repository` and that
        `policy` does not let be absent. Absent references are recorded all the same (the
        manifest's references), so what is pushed later is reachable from the manifest. Returns
        the digest each of `tags` points at now, read in the same query (tag -> digest, for the
        tags that exist)."""
        wanted = sorted(set(parsed.blobs))
        children = sorted(set(parsed.children))
        if wanted:
            # Touch first: on PostgreSQL this takes the rows' locks, so a collection deciding
            # about one of these blobs either finishes first (and the check below misses it) or
            # sees it touched now and keeps it. A blob touched within `touch_every` (a fraction
            # of the grace period) is left as it is, unlocked: no collection can find it old
            # enough to delete before this push commits, and concurrent pushes naming the same
            # layers do not wait for each other's row locks.
            now = utcnow()
            _TOUCH_BLOBS.of(len(wanted)).send(now, repository.registry_id, now - self.touch_every, *wanted)
        args = [v for part in (wanted, children, tags) if part for v in (repository.id, *part)]
        rows = _BEFORE_INSERT.of(len(wanted), len(children), len(tags)).rows(*args) if args else []
        if wanted:
            missing = sorted(set(wanted) - {digest for kind, _, digest in rows if kind == 0})
            if missing and not policy.blobs_may_be_absent:
                raise manifest_policy.missing_blobs(repository.name, missing)
        if children:
            present = {digest for kind, _, digest in rows if kind == 1}
            absent = list(
                {
                    d: p
                    for d, p in zip(parsed.children, parsed.platforms, strict=False)
                    if d not in present and policy.requires(p)
                }.items()
            )
            if absent:
                raise manifest_policy.missing_children(repository.name, absent, policy)
        return {tag: digest for kind, tag, digest in rows if kind == 2}

    def find_in(self, registry: Registry, name: str, reference: str) -> tuple[Repository, Manifest] | None:
        """The repository `name` and its manifest `reference`, in one query (a pull's); None when
        either is missing, or the reference names nothing a manifest is stored under: then
        `repositories.get` and `get` say which, in the error they raise."""
        kind, key = _lookup(reference)
        if kind is None:
            return None
        rows = (_NAMED_BY_DIGEST if kind == "digest" else _NAMED_BY_TAG).rows(registry.id, name, key)
        if not rows:
            return None
        repository, manifest = to_models(rows[0], Repository, Manifest)
        return repository, manifest

    def get(self, repository: Repository, reference: str) -> Manifest:
        kind, key = _lookup(reference)
        manifest = None
        if kind == "digest":
            manifest = _BY_DIGEST.first(repository.id, key)
        elif kind == "tag":
            manifest = _BY_TAG.first(repository.id, key)
        if manifest is None:
            raise _unknown(reference)
        return manifest

    def delete(self, repository: Repository, reference: str) -> None:
        """By digest: the manifest and every tag on it. By tag: just the tag."""
        kind, key = _lookup(reference)
        if kind is None:
            raise _unknown(reference)
        with transaction():
            serialize(repository_lock(repository.id))
            if kind == "digest":
                deleted = (
                    Manifest.delete().where((Manifest.repository == repository) & (Manifest.digest == key)).execute()
                )
            else:
                deleted = Tag.delete().where((Tag.repository == repository) & (Tag.name == key)).execute()
        if not deleted:
            raise _unknown(reference)
        self.tag_lists.changed(repository)


def _lookup(reference: str) -> tuple[str | None, str]:
    """("digest", canonical digest) or ("tag", tag) for a reference a manifest can be stored
    under; (None, "") for any other. spec.md lists only 404 for reads and deletes of
    `/manifests/<reference>`: a reference that is neither a tag nor a digest taken here names
    nothing stored, so it is not found (as in Distribution), where a push under it is refused."""
    if digests.is_digest(reference):
        digest = digests.canonical(reference)
        return ("digest", digest) if digest is not None else (None, "")
    return ("tag", reference) if is_tag(reference) else (None, "")


def _unknown(reference: str) -> RegistryError:
    return RegistryError(
        "MANIFEST_UNKNOWN", f"manifest {reference[:200]!r} not found", detail={"reference": reference[:200]}
    )


def referrers(repository: Repository, subject: str, artifact_type: str | None) -> list[dict]:
    """Descriptors of the manifests in `repository` whose subject is `subject`."""
    query = Manifest.select(
        Manifest.digest, Manifest.media_type, Manifest.size, Manifest.artifact_type, Manifest.annotations
    ).where((Manifest.repository == repository) & (Manifest.subject == subject))
    if artifact_type is not None:
        query = query.where(Manifest.artifact_type == artifact_type)
    result = []
    for m in query.order_by(Manifest.id):
        descriptor = {"mediaType": m.media_type, "digest": m.digest, "size": m.size}
        if m.artifact_type:
            descriptor["artifactType"] = m.artifact_type
        if m.annotations:
            descriptor["annotations"] = json.loads(m.annotations)
        result.append(descriptor)
    return result
