"""Migration 4: the `usage_day` table, pull and push counts and bytes per repository per day
(app/services/metering.py)."""

from __future__ import annotations

import peewee as pw


class Registry(pw.Model):
    class Meta:
        table_name = "registry"


class UsageDay(pw.Model):
    registry = pw.ForeignKeyField(Registry, backref="usage_days", on_delete="CASCADE")
    repository = pw.CharField(max_length=255)
    day = pw.DateField()
    pulls = pw.BigIntegerField(default=0)
    pull_bytes = pw.BigIntegerField(default=0)
    pushes = pw.BigIntegerField(default=0)
    push_bytes = pw.BigIntegerField(default=0)

    class Meta:
        table_name = "usage_day"
        indexes = ((("registry", "repository", "day"), True),)


def up(migrator, db: pw.Database) -> None:
    with UsageDay.bind_ctx(db):
        db.create_tables([UsageDay], safe=True)
