"""Migration 11: `registry.manifest_policy`, the registry's manifest validation policy (JSON; null
is `strict`, what every registry did before: see app/services/manifest_policy.py)."""

from __future__ import annotations

import peewee as pw


def up(migrator, db: pw.Database) -> None:
    migrator.migrate(migrator.add_column("registry", "manifest_policy", pw.TextField(null=True)))
