"""Migration 1, the baseline: the schema of app/db/models.py as of commit e93d3ee, frozen here.

On an empty database it creates these tables. On a database made before migrations existed (by
`create_tables(safe=True)` with the models of an older commit: no operation, audit_event or
idempotency_key table, no registry.custom_domain or registry.pull_namespaces, and before
ee31ee6 no member table or access_token.created_by) it creates the missing tables and adds the
missing columns, keeping every row.

Do not edit these classes: later schema changes are later migrations.
"""

from __future__ import annotations

import datetime as dt

import peewee as pw


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(pw.Model):
    class Meta:
        legacy_table_names = False


class Organization(BaseModel):
    name = pw.CharField(max_length=63, unique=True)
    created_at = pw.DateTimeField(default=utcnow)


class Registry(BaseModel):
    org = pw.ForeignKeyField(Organization, backref="registries", on_delete="CASCADE")
    name = pw.CharField(max_length=63, unique=True)
    visibility = pw.CharField(max_length=16, default="private")  # private | public
    # provisioning -> ready | failed; deleting (then the row goes). See app.lifecycle.operations.
    status = pw.CharField(max_length=16, default="ready")
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(max_length=255, null=True)
    custom_domain = pw.CharField(max_length=253, null=True)
    pull_namespaces = pw.TextField(null=True)  # JSON list of workload namespaces for the pull Secret


class Repository(BaseModel):
    registry = pw.ForeignKeyField(Registry, backref="repositories", on_delete="CASCADE")
    name = pw.CharField(max_length=255)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("registry", "name"), True),)


class Blob(BaseModel):
    registry = pw.ForeignKeyField(Registry, backref="blobs", on_delete="CASCADE")
    digest = pw.CharField(max_length=200)
    size = pw.BigIntegerField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("registry", "digest"), True),)


class RepositoryBlob(BaseModel):
    repository = pw.ForeignKeyField(Repository, backref="blob_links", on_delete="CASCADE")
    blob = pw.ForeignKeyField(Blob, backref="repository_links", on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("repository", "blob"), True),)


class Manifest(BaseModel):
    repository = pw.ForeignKeyField(Repository, backref="manifests", on_delete="CASCADE")
    digest = pw.CharField(max_length=200)
    media_type = pw.CharField(max_length=255)
    artifact_type = pw.CharField(max_length=255, null=True)
    subject = pw.CharField(max_length=200, null=True, index=True)
    size = pw.IntegerField()
    content = pw.BlobField()
    annotations = pw.TextField(null=True)  # JSON, for the referrers API
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("repository", "digest"), True),)


class ManifestReference(BaseModel):
    manifest = pw.ForeignKeyField(Manifest, backref="references", on_delete="CASCADE")
    digest = pw.CharField(max_length=200, index=True)
    kind = pw.CharField(max_length=16)  # blob | manifest


class Tag(BaseModel):
    repository = pw.ForeignKeyField(Repository, backref="tags", on_delete="CASCADE")
    name = pw.CharField(max_length=128)
    manifest = pw.ForeignKeyField(Manifest, backref="tags", on_delete="CASCADE")
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("repository", "name"), True),)


class Upload(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    repository = pw.ForeignKeyField(Repository, backref="uploads", on_delete="CASCADE")
    offset = pw.BigIntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class Member(BaseModel):
    org = pw.ForeignKeyField(Organization, backref="members", on_delete="CASCADE")
    subject = pw.CharField(max_length=255)
    role = pw.CharField(max_length=16)
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(max_length=255, null=True)

    class Meta:
        indexes = ((("org", "subject"), True),)


class AccessToken(BaseModel):
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
    id = pw.CharField(max_length=36, primary_key=True)
    org = pw.ForeignKeyField(Organization, backref="operations", on_delete="CASCADE")
    registry = pw.ForeignKeyField(Registry, null=True, backref="operations", on_delete="SET NULL")
    registry_name = pw.CharField(max_length=63, index=True)
    kind = pw.CharField(max_length=16)  # create | delete
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


MODELS = [
    Organization,
    Registry,
    Repository,
    Blob,
    RepositoryBlob,
    Manifest,
    ManifestReference,
    Tag,
    Upload,
    Member,
    AccessToken,
    Operation,
    AuditEvent,
    IdempotencyKey,
]


def up(migrator, db: pw.Database) -> None:
    with db.bind_ctx(MODELS):
        tables = set(db.get_tables())
        for model in MODELS:  # in dependency order
            table = model._meta.table_name
            if table not in tables:
                model.create_table(safe=True)
                continue
            columns = {c.name for c in db.get_columns(table)}
            for field in model._meta.sorted_fields:
                if field.column_name not in columns:
                    migrator.migrate(migrator.add_column(table, field.column_name, field))
            model._schema.create_indexes(safe=True)
