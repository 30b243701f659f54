"""Migration 13: `upload.registry_id`, the session's registry (its repository's), indexed, so a
registry's open sessions are counted and their bytes summed before every blob upload
(app/services/quotas.py) from that index alone. The join through the registry's repositories
it replaces was planned on PostgreSQL as a probe of the sessions per repository: 554,654 index
scans for 1,050 uploads into a registry of 500 repositories (pg_stat_user_indexes), and the
bench's populate step of 10,000 repositories slower than Distribution's for it.

Existing sessions get their repository's registry. Nullable: a version before this one, still
running while it rolls out, starts sessions without it (counted once they are replaced; they
expire or finish). Built in the migration's transaction, as migration 12's index (the upload
table holds only open sessions: small)."""

from __future__ import annotations

import peewee as pw


def up(migrator, db: pw.Database) -> None:
    migrator.migrate(migrator.add_column("upload", "registry_id", pw.IntegerField(null=True)))
    db.execute_sql(
        'UPDATE "upload" SET "registry_id" = '
        '(SELECT "registry_id" FROM "repository" WHERE "repository"."id" = "upload"."repository_id")'
    )
    migrator.migrate(migrator.add_index("upload", ("registry_id",), unique=False))
