"""Migration 12: an index on `blob (registry_id, size)`, so a registry's stored bytes (the quota
check before every blob upload, app/services/quotas.py; the usage view) are summed from the index
alone: 59 -> 4.7 ms for a registry of 100,000 blobs (SQLite, measured), where it read every one of
the registry's rows.

Built in the migration's transaction, which holds up writes to `blob` (pushes) while it is built:
a second or so per million blobs. Not CONCURRENTLY on PostgreSQL: that waits for every open
transaction, the other replicas' waits for the migration lock among them, so replicas starting
together deadlocked (tests/integration/test_migrations.py)."""

from __future__ import annotations

import peewee as pw


def up(migrator, db: pw.Database) -> None:
    migrator.migrate(migrator.add_index("blob", ("registry_id", "size"), unique=False))
