"""Migration 13: drop the single-column indexes that a unique or composite index already leads
with: `manifest (repository_id)`, `tag (repository_id)`, `audit_event (org_id)`, `blob
(registry_id)`, `repository (registry_id)` and `repository_blob (repository_id)`.

peewee makes an index for every foreign key; each of these repeats the first column of another
index of its table (`manifest (repository_id, digest)`, `tag (repository_id, name)`,
`audit_event (org_id, time)`, `blob (registry_id, digest)`, `repository (registry_id, name)`,
`repository_blob (repository_id, blob_id)`), which serves the same lookups and the foreign keys'
cascades. Every push wrote three of them (its manifest, its tag, its audit record) and every blob
upload two more: B-tree pages written on each commit, inside the write lock, for nothing read.
A DROP INDEX neither rewrites nor scans its table."""

from __future__ import annotations

import peewee as pw

REDUNDANT = (
    "manifest_repository_id",
    "tag_repository_id",
    "audit_event_org_id",
    "blob_registry_id",
    "repository_registry_id",
    "repository_blob_repository_id",
)


def up(migrator, db: pw.Database) -> None:
    for name in REDUNDANT:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
