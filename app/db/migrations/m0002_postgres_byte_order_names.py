"""Migration 2: on PostgreSQL, names that are listed in lexical order sort bytewise.

The distribution spec pages tags and `_catalog` in lexical order with `last`; SQLite compares
text bytewise, PostgreSQL by the database's collation (en_US.UTF-8 puts "a-b" after "ab" and
folds case). Column collation "C" makes comparisons, ORDER BY and the unique indexes bytewise on
any PostgreSQL, whatever the database was created with. Nothing to do on SQLite.
"""

from __future__ import annotations

import peewee as pw

COLUMNS = (("tag", "name", 128), ("repository", "name", 255), ("registry", "name", 63))


def up(migrator, db: pw.Database) -> None:
    if not isinstance(db, pw.PostgresqlDatabase):
        return
    for table, column, length in COLUMNS:
        db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE VARCHAR({length}) COLLATE "C"')
