"""Migration 5: storage SKUs (`organization.sku`, `registry.sku`; null = the catalog's default
or the organization's) and immutable-tag repository patterns (`registry.immutable_tags`, JSON)."""

from __future__ import annotations

import peewee as pw


def up(migrator, db: pw.Database) -> None:
    migrator.migrate(
        migrator.add_column("organization", "sku", pw.CharField(max_length=63, null=True)),
        migrator.add_column("registry", "sku", pw.CharField(max_length=63, null=True)),
        migrator.add_column("registry", "immutable_tags", pw.TextField(null=True)),
    )
