"""The metadata model: organization -> registry -> repository -> manifests, tags, blobs.

Blob bytes live in the blob store; these rows say which registry holds which blob and which
repository may serve it. Foreign keys cascade so that deleting a registry removes all it owns.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING

import peewee as pw

database = pw.DatabaseProxy()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(pw.Model):
    """Each model declares its primary key (`id = pw.AutoField()` is what peewee would add
    unasked) and, for the type checker, the `<foreign key>_id` attributes peewee adds."""

    class Meta:
        database = database
        legacy_table_names = False


class Organization(BaseModel):
    id = pw.AutoField()
    name = pw.CharField(max_length=63, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    sku = pw.CharField(max_length=63, null=True)  # storage SKU (app/services/quotas.py); null: the default


def new_registry_uid() -> str:
    return secrets.token_hex(16)


class Registry(BaseModel):
    id = pw.AutoField()
    if TYPE_CHECKING:
        org_id: int
    org = pw.ForeignKeyField(Organization, backref="registries", on_delete="CASCADE")
    name = pw.CharField(max_length=63, unique=True)
    # The registry's identity, never reused (names and, on SQLite, row ids can be): registry
    # tokens name the registry they grant in by it (app/auth/gate.py).
    uid = pw.CharField(max_length=32, unique=True, default=new_registry_uid)
    visibility = pw.CharField(max_length=16, default="private")  # private | public
    # provisioning -> ready | failed; deleting (then the row goes). See app.lifecycle.operations.
    status = pw.CharField(max_length=16, default="ready")
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(max_length=255, null=True)
    # A hostname the organization claims (lowercase, no trailing dot; unique), routed only once
    # verified through DNS (app/services/custom_domains.py).
    custom_domain = pw.CharField(max_length=253, null=True, unique=True)
    custom_domain_challenge = pw.CharField(max_length=64, null=True)  # the TXT value that proves it
    custom_domain_claimed_at = pw.DateTimeField(null=True)
    custom_domain_verified_at = pw.DateTimeField(null=True)  # null: pending
    pull_namespaces = pw.TextField(null=True)  # JSON list of workload namespaces for the pull Secret
    sku = pw.CharField(max_length=63, null=True)  # overrides the organization's SKU when set
    immutable_tags = pw.TextField(null=True)  # JSON list of repository globs whose tags never move
    # JSON {"mode", "required_platforms"}; null: strict (app/services/manifest_policy.py)
    manifest_policy = pw.TextField(null=True)

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    @property
    def serves(self) -> bool:
        """Whether the data plane answers for it: from creation (even while its Kubernetes
        footprint is provisioned, or when that failed) until it is marked for deletion."""
        return self.status != "deleting"


class Repository(BaseModel):
    id = pw.AutoField()
    if TYPE_CHECKING:
        registry_id: int
    registry = pw.ForeignKeyField(Registry, backref="repositories", on_delete="CASCADE")
    name = pw.CharField(max_length=255)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("registry", "name"), True),)


class Blob(BaseModel):
    """A blob stored once per registry (content-addressed under the registry's prefix)."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        registry_id: int

    registry = pw.ForeignKeyField(Registry, backref="blobs", on_delete="CASCADE")
    digest = pw.CharField(max_length=200)
    size = pw.BigIntegerField()
    created_at = pw.DateTimeField(default=utcnow)
    # Last pushed, mounted, checked (HEAD/GET) or referenced by a pushed manifest: garbage
    # collection keeps blobs touched within its grace period (a push in flight may need them).
    # Null on rows older than the column: read as created_at.
    touched_at = pw.DateTimeField(null=True, default=utcnow)

    class Meta:
        # (registry, size): a registry's stored bytes summed from the index alone (migration 12).
        indexes = ((("registry", "digest"), True), (("registry", "size"), False))


class RepositoryBlob(BaseModel):
    """A blob is served from a repository only when linked to it (pushed or mounted there)."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        repository_id: int
        blob_id: int

    repository = pw.ForeignKeyField(Repository, backref="blob_links", on_delete="CASCADE")
    blob = pw.ForeignKeyField(Blob, backref="repository_links", on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("repository", "blob"), True),)


class Manifest(BaseModel):
    id = pw.AutoField()
    if TYPE_CHECKING:
        repository_id: int
    repository = pw.ForeignKeyField(Repository, backref="manifests", on_delete="CASCADE")
    digest = pw.CharField(max_length=200)
    media_type = pw.CharField(max_length=255)
    artifact_type = pw.CharField(max_length=255, null=True)
    subject = pw.CharField(max_length=200, null=True, index=True)
    size = pw.IntegerField()
    content = pw.BlobField()
    annotations = pw.TextField(null=True)  # JSON, for the referrers API
    created_at = pw.DateTimeField(default=utcnow)
    # Last fetched (GET or HEAD, by tag or digest), to the hour: written only when the stored
    # value is older than that (app/services/retention.py PullTimes.record). Null: never pulled since.
    pulled_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("repository", "digest"), True),)


class ManifestReference(BaseModel):
    """What a manifest points at: its config and layers (blobs) or its children (manifests)."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        manifest_id: int

    manifest = pw.ForeignKeyField(Manifest, backref="references", on_delete="CASCADE")
    digest = pw.CharField(max_length=200, index=True)
    kind = pw.CharField(max_length=16)  # blob | manifest


class Tag(BaseModel):
    id = pw.AutoField()
    if TYPE_CHECKING:
        repository_id: int
        manifest_id: int
    repository = pw.ForeignKeyField(Repository, backref="tags", on_delete="CASCADE")
    name = pw.CharField(max_length=128)
    manifest = pw.ForeignKeyField(Manifest, backref="tags", on_delete="CASCADE")
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("repository", "name"), True),)


class TagVersion(BaseModel):
    """A repository's tag-set version: raised by database triggers (migration 8) whenever one of
    its tags is inserted, moved or deleted, whoever does it (pushes, deletes, retention, GC's
    cascades), so a cached tag list checks it with one primary-key read. Written only by the
    triggers: no code saves it."""

    if TYPE_CHECKING:
        repository_id: int

    repository = pw.ForeignKeyField(Repository, primary_key=True, on_delete="CASCADE")
    version = pw.BigIntegerField(default=0)

    class Meta:
        table_name = "tag_version"


class RetentionPolicy(BaseModel):
    """A registry's retention rules (app/services/retention.py), one JSON document: the registry's
    rules and per-repository-pattern overrides."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        registry_id: int

    registry = pw.ForeignKeyField(Registry, backref="retention_policies", on_delete="CASCADE", unique=True)
    rules = pw.TextField()  # JSON
    updated_at = pw.DateTimeField(default=utcnow)
    updated_by = pw.CharField(max_length=255, null=True)


class Upload(BaseModel):
    """An upload session; its bytes are in the blob store's upload area under the same id."""

    if TYPE_CHECKING:
        repository_id: int

    id = pw.CharField(max_length=36, primary_key=True)
    repository = pw.ForeignKeyField(Repository, backref="uploads", on_delete="CASCADE")
    # The repository's registry, copied at the start (a repository never moves): a registry's
    # open sessions are counted and their bytes summed before every upload from this index
    # alone, where a join through its repositories probed the sessions once per repository when
    # PostgreSQL's plan started from them (migration 13). Null only in rows started by a
    # version before it, while it rolls out; the repository's cascade removes the row.
    registry_id = pw.IntegerField(null=True, index=True)
    offset = pw.BigIntegerField(default=0)
    # The running SHA-256 state after `offset` bytes (app/services/hashstate.py), or null.
    hash_state = pw.BlobField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class Member(BaseModel):
    """A stored membership: a subject (an identity-provider `sub` or user name) holds a role in
    an organization, on every registry of it."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        org_id: int

    org = pw.ForeignKeyField(Organization, backref="members", on_delete="CASCADE")
    subject = pw.CharField(max_length=255)
    role = pw.CharField(max_length=16)
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(max_length=255, null=True)

    class Meta:
        indexes = ((("org", "subject"), True),)


class AccessToken(BaseModel):
    """A credential: only the SHA-256 of the secret is stored. `role` is what it acts with
    (pull-scoped tokens act as readers, push-scoped as developers), never more than its creator's."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        org_id: int
        registry_id: int | None

    org = pw.ForeignKeyField(Organization, backref="tokens", on_delete="CASCADE")
    registry = pw.ForeignKeyField(Registry, null=True, backref="tokens", on_delete="CASCADE")
    name = pw.CharField(max_length=100)
    token_hash = pw.CharField(max_length=64, unique=True)
    role = pw.CharField(max_length=16)  # owner | admin | developer | reader
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(max_length=255, null=True)
    expires_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)
    last_used_at = pw.DateTimeField(null=True)


class Operation(BaseModel):
    """A lifecycle operation on a registry (create, delete), run by the operation worker.

    The registry link is kept as a name as well: a delete operation outlives its registry row.
    `lease_*` let one worker (of several replicas) own it at a time; an expired lease means its
    worker died and the operation is picked up again.
    """

    if TYPE_CHECKING:
        org_id: int
        registry_id: int | None

    id = pw.CharField(max_length=36, primary_key=True)
    org = pw.ForeignKeyField(Organization, backref="operations", on_delete="CASCADE")
    registry = pw.ForeignKeyField(Registry, null=True, backref="operations", on_delete="SET NULL")
    registry_name = pw.CharField(max_length=63, index=True)
    kind = pw.CharField(max_length=16)  # create | update | delete
    state = pw.CharField(max_length=16, default="pending", index=True)  # pending|running|succeeded|failed
    steps = pw.TextField(default="[]")  # JSON: [{"name", "state", "started_at", "finished_at"}]
    log = pw.TextField(default="")
    error = pw.TextField(null=True)
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow)
    lease_owner = pw.CharField(max_length=64, null=True)
    lease_until = pw.DateTimeField(null=True)
    requested_by = pw.CharField(max_length=255, null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    finished_at = pw.DateTimeField(null=True)


class AuditEvent(BaseModel):
    """Who did what, where, from which address, with what outcome. Registry and repository are
    names, not links: the record outlives them."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        org_id: int

    org = pw.ForeignKeyField(Organization, backref="audit_events", on_delete="CASCADE")
    time = pw.DateTimeField(default=utcnow)
    actor = pw.CharField(max_length=255)
    action = pw.CharField(max_length=64)
    registry = pw.CharField(max_length=63, null=True)
    repository = pw.CharField(max_length=255, null=True)
    digest = pw.CharField(max_length=200, null=True)
    tag = pw.CharField(max_length=128, null=True)
    detail = pw.TextField(null=True)  # JSON
    outcome = pw.CharField(max_length=16)  # success | failure | denied
    status = pw.IntegerField(null=True)
    client_ip = pw.CharField(max_length=64, null=True)
    request_id = pw.CharField(max_length=128, null=True)

    class Meta:
        indexes = (
            (("org", "time"), False),
            (("org", "registry", "time"), False),
            (("org", "action", "time"), False),
            (("org", "actor", "time"), False),
        )


class IdempotencyKey(BaseModel):
    """A create request's `Idempotency-Key`: a retry with the same key and body gets the first
    answer again instead of creating twice."""

    id = pw.AutoField()

    subject = pw.CharField(max_length=255)
    key = pw.CharField(max_length=255)
    method = pw.CharField(max_length=8)
    path = pw.CharField(max_length=1024)
    fingerprint = pw.CharField(max_length=64)  # sha256 of the request body
    status = pw.IntegerField()
    headers = pw.TextField(default="{}")  # JSON
    body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("subject", "key"), True),)


class UsageDay(BaseModel):
    """Pull and push traffic of one repository on one (UTC) day, counted by one upsert per
    request (app/services/metering.py). The repository is a name: counts outlive it."""

    id = pw.AutoField()
    if TYPE_CHECKING:
        registry_id: int

    registry = pw.ForeignKeyField(Registry, backref="usage_days", on_delete="CASCADE")
    repository = pw.CharField(max_length=255)
    day = pw.DateField()
    pulls = pw.BigIntegerField(default=0)
    pull_bytes = pw.BigIntegerField(default=0)
    pushes = pw.BigIntegerField(default=0)
    push_bytes = pw.BigIntegerField(default=0)

    class Meta:
        indexes = ((("registry", "repository", "day"), True),)


ALL_MODELS = [
    Organization,
    Registry,
    Repository,
    Blob,
    RepositoryBlob,
    Manifest,
    ManifestReference,
    Tag,
    TagVersion,
    RetentionPolicy,
    Upload,
    Member,
    AccessToken,
    Operation,
    AuditEvent,
    IdempotencyKey,
    UsageDay,
]
