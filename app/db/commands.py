"""`berth db migrate` and `berth db status`: the schema migrations, run by an operator (they also
run at every `berth serve` start)."""

from __future__ import annotations

import argparse


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    """Register `berth db ...` on the top-level subparsers."""
    db = sub.add_parser("db", help="the metadata database").add_subparsers(dest="action", required=True)
    p = db.add_parser("migrate", parents=[common], help="apply pending schema migrations (BERTH_DATABASE_URL)")
    p.add_argument("--target", type=int, help="stop after this version (default: all)")
    p.set_defaults(func=migrate_command)
    p = db.add_parser("status", parents=[common], help="list schema migrations and whether each is applied")
    p.set_defaults(func=status_command)


def _database(args: argparse.Namespace):
    from app.config import Settings
    from app.db.setup import open_database

    settings = Settings.load(data_dir=getattr(args, "data_dir", None))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_database(settings.database_url, migrate=False)


def migrate_command(args: argparse.Namespace) -> int:
    from app.db import migrations

    db = _database(args)
    ran = migrations.migrate(db, target=args.target)
    for m in ran:
        print(f"applied {m.version:04d} {m.name}")
    with db.connection_context():
        missing = migrations.missing_columns(db)
    current = max((m.version for m, row in migrations.status(db) if row), default=0)
    print(f"schema at version {current}" + ("" if ran else " (nothing to do)"))
    if missing and args.target is None:
        print(f"warning: the models need {', '.join(missing)}, which no migration creates")
        return 1
    return 0


def status_command(args: argparse.Namespace) -> int:
    from app.db import migrations

    db = _database(args)
    with db.connection_context():
        rows = migrations.status(db)
    for m, row in rows:
        state = f"applied {row.applied_at.isoformat(timespec='seconds')}Z" if row else "pending"
        print(f"{m.version:04d}\t{m.name}\t{state}")
    return 0
