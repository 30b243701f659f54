"""Migration 6: retention policies (the `retention_policy` table, one JSON rule document per
registry) and `manifest.pulled_at`, the last pull to the hour (app/services/retention.py)."""

from __future__ import annotations

import peewee as pw


class Registry(pw.Model):
    class Meta:
        table_name = "registry"


class RetentionPolicy(pw.Model):
    registry = pw.ForeignKeyField(Registry, backref="retention_policies", on_delete="CASCADE", unique=True)
    rules = pw.TextField()
    updated_at = pw.DateTimeField()
    updated_by = pw.CharField(max_length=255, null=True)

    class Meta:
        table_name = "retention_policy"


def up(migrator, db: pw.Database) -> None:
    migrator.migrate(
        migrator.add_column("manifest", "pulled_at", pw.DateTimeField(null=True)),
    )
    with RetentionPolicy.bind_ctx(db):
        db.create_tables([RetentionPolicy], safe=True)
