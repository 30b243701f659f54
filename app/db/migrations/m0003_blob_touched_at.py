"""Blob.touched_at: when a blob was last pushed, mounted, checked or referenced, for garbage
collection's grace period. Existing rows keep null (read as their created_at)."""

import peewee as pw


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("blob", "touched_at", pw.DateTimeField(null=True)),
    )
