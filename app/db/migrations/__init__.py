"""Versioned schema migrations, for SQLite and PostgreSQL alike.

`migrate(db)` runs at every start (`open_database`) and from `berth db migrate`. Applied
versions are rows of the `schema_migrations` table; a migration runs once per database, inside a
transaction together with the row that records it. Replicas starting together are serialised
(PostgreSQL: an advisory lock; SQLite: one BEGIN IMMEDIATE around the run), so each migration is
applied by exactly one of them.

Migration 1 is the baseline: the schema of `app/db/models.py` as of commit e93d3ee, frozen in
`m0001_baseline.py`. It creates that schema on an empty database, and brings forward a database
created before migrations existed (by `create_tables` with older models): missing tables are
created and missing columns added, rows kept.

How to add a migration (say, a new column `Registry.labels`):

1. Add the field to the model in `app/db/models.py` as usual.
2. Add a module here named `m<NNNN>_<what>.py`, NNNN the next free number (4 digits; the number
   is the version, the rest is its name), defining `up(migrator, db)`:

       import peewee as pw

       def up(migrator, db):
           migrator.migrate(
               migrator.add_column("registry", "labels", pw.TextField(null=True)),
           )

   `migrator` is a playhouse.migrate `SchemaMigrator` for the database (add_column,
   drop_column, rename_column, add_index, drop_index, add_not_null, ...); `db` is the peewee
   database (`db.execute_sql(...)`, `isinstance(db, pw.PostgresqlDatabase)` for dialect steps).
   A new table: declare a frozen copy of its model inside the migration module (never import
   app.db.models: those change later) and `db.create_tables([Frozen], safe=True)` bound with
   `Frozen.bind_ctx(db)`. Use table and column names, never today's model classes.
   A NOT NULL column needs a default (`pw.IntegerField(default=0)`) so existing rows get one.
3. Never edit a migration that has been committed; write another one. Never call
   `create_tables` on the live models to change a schema.
4. `tests/integration/test_migrations.py` checks that migrating an empty database reaches exactly
   the columns of `ALL_MODELS` (on SQLite, and on PostgreSQL when it runs): it fails until the
   migration for a new field exists.

Set `atomic = False` at module level only for a step that cannot run in a transaction (e.g.
PostgreSQL's CREATE INDEX CONCURRENTLY); it then runs outside one and must be re-runnable.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import peewee as pw
from playhouse.migrate import SchemaMigrator

from app.db.models import ALL_MODELS, utcnow

log = logging.getLogger("berth.db.migrations")

TABLE = "schema_migrations"
_LOCK_KEY = zlib.crc32(b"berth schema migrations")  # the PostgreSQL advisory lock's key
_MODULE = re.compile(r"^m(\d{4})_(\w+)$")


class SchemaMigration(pw.Model):
    version = pw.IntegerField(primary_key=True)
    name = pw.CharField(max_length=255)
    applied_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = TABLE


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Callable[[SchemaMigrator, pw.Database], None]
    atomic: bool = True


def available() -> list[Migration]:
    """Every migration module of this package, by version."""
    found: dict[int, Migration] = {}
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE.match(info.name)
        if not match:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two migrations numbered {version}: {found[version].name}, {match.group(2)}")
        found[version] = Migration(version, match.group(2), module.up, getattr(module, "atomic", True))
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must be 1..N without gaps, found {versions}")
    return [found[v] for v in versions]


def applied(db: pw.Database) -> dict[int, SchemaMigration]:
    with SchemaMigration.bind_ctx(db):
        if not SchemaMigration.table_exists():
            return {}
        return {row.version: row for row in SchemaMigration.select()}


def status(db: pw.Database) -> list[tuple[Migration, SchemaMigration | None]]:
    done = applied(db)
    return [(m, done.get(m.version)) for m in available()]


def migrate(db: pw.Database, target: int | None = None) -> list[Migration]:
    """Apply the pending migrations (up to `target`), in order; returns those applied."""
    todo = available()
    ran: list[Migration] = []
    with db.connection_context(), _exclusive(db), SchemaMigration.bind_ctx(db):
        existing = set(db.get_tables())
        if TABLE not in existing and existing & {m._meta.table_name for m in ALL_MODELS}:
            log.warning("database has no %s table: an un-versioned schema, bringing it forward", TABLE)
        SchemaMigration.create_table(safe=True)
        done = {row.version for row in SchemaMigration.select(SchemaMigration.version)}
        unknown = sorted(done - {m.version for m in todo})
        if unknown:
            log.warning("database has migrations this code does not know (newer code ran here): %s", unknown)
        migrator = SchemaMigrator.from_database(db)
        for migration in todo:
            if migration.version in done or (target is not None and migration.version > target):
                continue
            log.info("applying migration %d (%s)", migration.version, migration.name)
            if migration.atomic:
                with db.atomic():
                    migration.up(migrator, db)
                    SchemaMigration.create(version=migration.version, name=migration.name)
            else:
                migration.up(migrator, db)
                SchemaMigration.create(version=migration.version, name=migration.name)
            ran.append(migration)
    return ran


def missing_columns(db: pw.Database) -> list[str]:
    """`table.column` (or `table`) the live models need but the database lacks: a model field
    added without its migration."""
    missing = []
    tables = set(db.get_tables())
    for model in ALL_MODELS:
        table = model._meta.table_name
        if table not in tables:
            missing.append(table)
            continue
        columns = {c.name for c in db.get_columns(table)}
        missing += [f"{table}.{f.column_name}" for f in model._meta.sorted_fields if f.column_name not in columns]
    return missing


@contextmanager
def _exclusive(db: pw.Database) -> Iterator[None]:
    """One migrating process at a time."""
    if isinstance(db, pw.PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    elif isinstance(db, pw.SqliteDatabase):
        # The write lock for the whole run; each migration's atomic() is a savepoint inside it.
        with db.atomic("IMMEDIATE"):
            yield
    else:
        yield
