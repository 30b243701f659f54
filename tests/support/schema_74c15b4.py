"""The metadata models as of commit 74c15b4 (just before e93d3ee), frozen: what databases made
before schema migrations existed look like (`create_tables(safe=True)` with these). No operation,
audit_event or idempotency_key table; no registry.custom_domain or registry.pull_namespaces."""

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
    status = pw.CharField(max_length=16, default="ready")
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(max_length=255, null=True)


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


ALL_MODELS = [
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
]
