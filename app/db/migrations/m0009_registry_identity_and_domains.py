"""Migration 9: the tenant boundary.

- `registry.uid`: an identity never reused (a name is reused after a delete, and so is a SQLite
  row id), which registry tokens are bound to. Existing registries get a random one.
- Custom domains become claims verified through DNS: `custom_domain_challenge`,
  `custom_domain_claimed_at`, `custom_domain_verified_at`, and one claim per hostname (a unique
  index). Existing domains are normalised (lowercase, no trailing dot); where two registries
  claimed the same name, the older registry keeps it. Every existing claim starts pending: it is
  routed again once its owner publishes the TXT record and verifies it.
"""

from __future__ import annotations

import datetime as dt
import secrets

import peewee as pw


def up(migrator, db: pw.Database) -> None:
    migrator.migrate(
        migrator.add_column("registry", "uid", pw.CharField(max_length=32, null=True)),
        migrator.add_column("registry", "custom_domain_challenge", pw.CharField(max_length=64, null=True)),
        migrator.add_column("registry", "custom_domain_claimed_at", pw.DateTimeField(null=True)),
        migrator.add_column("registry", "custom_domain_verified_at", pw.DateTimeField(null=True)),
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    seen: set[str] = set()
    rows = db.execute_sql("SELECT id, custom_domain FROM registry ORDER BY id").fetchall()
    for registry_id, domain in rows:
        domain = (domain or "").strip().lower().rstrip(".") or None
        if domain in seen:
            domain = None
        if domain:
            seen.add(domain)
        db.execute_sql(
            "UPDATE registry SET uid = %s, custom_domain = %s, custom_domain_challenge = %s, "
            "custom_domain_claimed_at = %s WHERE id = %s".replace("%s", db.param),
            (
                secrets.token_hex(16),
                domain,
                secrets.token_urlsafe(24) if domain else None,
                now if domain else None,
                registry_id,
            ),
        )
    # The column stays nullable in the schema (SQLite would rebuild the table to add NOT NULL,
    # and a rebuild of a parent table cascades); every row has one, and the model's default
    # gives each new row one.
    migrator.migrate(
        migrator.add_index("registry", ("uid",), unique=True),
        migrator.add_index("registry", ("custom_domain",), unique=True),
    )
