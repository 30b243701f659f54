"""Schema migrations on SQLite and PostgreSQL: an empty database reaches the models; a database
made before migrations existed (the models of 74c15b4, with rows) is brought forward by
`berth db migrate` and by `berth serve` with its data intact; replicas migrating at once apply
each migration once."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import peewee as pw
import pytest
import requests

from app.db import migrations
from app.db import models as live
from app.db.setup import database_for
from tests.support import postgres
from tests.support import schema_74c15b4 as old
from tests.support.server import ROOT, Server

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
DIGEST = "sha256:" + "b" * 64
VERSIONS = [m.version for m in migrations.available()]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'berth.db'}"
    return postgres.create_database()


def _berth(*args: str, url: str, data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "BERTH_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _old_database_with_rows(url: str) -> None:
    """What a Berth before migrations left behind: its tables by create_tables, and content."""
    db = database_for(url)
    with db.bind_ctx(old.ALL_MODELS), db.connection_context():
        db.create_tables(old.ALL_MODELS, safe=True)
        org = old.Organization.create(name="acme")
        registry = old.Registry.create(org=org, name="prod", visibility="public", created_by="cli")
        repo = old.Repository.create(registry=registry, name="team/app")
        blob = old.Blob.create(registry=registry, digest="sha256:" + "a" * 64, size=3)
        old.RepositoryBlob.create(repository=repo, blob=blob)
        manifest = old.Manifest.create(
            repository=repo,
            digest=DIGEST,
            media_type="application/vnd.oci.image.manifest.v1+json",
            size=len(MANIFEST),
            content=MANIFEST,
        )
        old.ManifestReference.create(manifest=manifest, digest=blob.digest, kind="blob")
        old.Tag.create(repository=repo, name="v1", manifest=manifest)
        old.Upload.create(id=str(uuid.uuid4()), repository=repo, offset=1234)
        old.Member.create(org=org, subject="alice", role="developer")
        old.AccessToken.create(org=org, name="ci", token_hash="c" * 64, role="reader")
    db.close()


def _applied(url: str) -> list[int]:
    db = database_for(url)
    with db.connection_context():
        return sorted(migrations.applied(db))


def test_an_empty_database_migrates_to_exactly_the_models(database_url):
    db = database_for(database_url)
    assert [m.version for m in migrations.migrate(db)] == VERSIONS
    with db.connection_context():
        assert migrations.missing_columns(db) == [], "a model field has no migration: see app/db/migrations"
    assert migrations.migrate(db) == []  # once only
    assert _applied(database_url) == VERSIONS


def _indexes(db) -> set[tuple[str, tuple[str, ...], bool]]:
    """(table, columns, unique) of every index the database has on the models' tables, primary
    keys aside."""
    tables = {m._meta.table_name for m in live.ALL_MODELS}
    found = set()
    with db.connection_context():
        if database_url_is_postgres(db):
            rows = db.execute_sql(
                "SELECT t.relname, ix.indisunique, array_agg(a.attname ORDER BY k.ord) FROM pg_index ix "
                "JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
                "WHERE n.nspname = current_schema() AND NOT ix.indisprimary GROUP BY ix.indexrelid, 1, 2"
            ).fetchall()
            found = {(t, tuple(cols), unique) for t, unique, cols in rows if t in tables}
        else:
            for table in tables:
                for _, name, unique, origin, _ in db.execute_sql(f'PRAGMA index_list("{table}")').fetchall():
                    if origin != "pk":
                        cols = tuple(r[2] for r in db.execute_sql(f'PRAGMA index_info("{name}")').fetchall())
                        found.add((table, cols, bool(unique)))
    return found


def database_url_is_postgres(db) -> bool:
    return not isinstance(db, pw.SqliteDatabase)


def test_an_empty_database_has_exactly_the_indexes_of_the_models(database_url):
    """No index a migration made that the models no longer declare (each is written on every
    insert), none that they declare missing."""
    db = database_for(database_url)
    migrations.migrate(db)
    declared = {
        (m._meta.table_name, tuple(f.column_name for f in idx._expressions), bool(idx._unique))
        for m in live.ALL_MODELS
        for idx in m._meta.fields_to_index()
    }
    assert _indexes(db) == declared


def test_an_unversioned_database_is_brought_forward_with_its_rows(database_url, tmp_path):
    _old_database_with_rows(database_url)

    status = _berth("db", "status", url=database_url, data_dir=tmp_path / "data")
    assert status.returncode == 0 and "pending" in status.stdout, status.stderr
    result = _berth("db", "migrate", url=database_url, data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "applied 0001 baseline" in result.stdout
    assert _applied(database_url) == VERSIONS
    again = _berth("db", "migrate", url=database_url, data_dir=tmp_path / "data")
    assert again.returncode == 0 and "nothing to do" in again.stdout

    db = database_for(database_url)
    with db.bind_ctx(live.ALL_MODELS), db.connection_context():
        assert migrations.missing_columns(db) == []
        registry = live.Registry.get(live.Registry.name == "prod")
        assert (registry.org.name, registry.visibility, registry.created_by) == ("acme", "public", "cli")
        assert registry.custom_domain is None and registry.pull_namespaces is None
        registry.custom_domain, registry.pull_namespaces = "registry.acme.example", '["apps"]'
        registry.save()
        assert live.Registry.get_by_id(registry.id).custom_domain == "registry.acme.example"
        tag = live.Tag.get(live.Tag.name == "v1")
        assert tag.manifest.digest == DIGEST and bytes(tag.manifest.content) == MANIFEST
        assert [r.kind for r in tag.manifest.references] == ["blob"]
        upload = live.Upload.get()
        assert upload.offset == 1234
        assert upload.registry_id == registry.id  # migration 13: the session's registry, filled in
        assert live.Member.get().subject == "alice" and live.AccessToken.get().token_hash == "c" * 64
        # The tables the old schema lacked take rows.
        operation = live.Operation.create(
            id=str(uuid.uuid4()), org=registry.org, registry=registry, registry_name="prod", kind="create"
        )
        assert live.Operation.get_by_id(operation.id).state == "pending"
        live.AuditEvent.create(org=registry.org, actor="alice", action="push", outcome="success")
        live.IdempotencyKey.create(
            subject="alice", key="k1", method="POST", path="/x", fingerprint="f" * 64, status=201, body="{}"
        )
        assert live.AuditEvent.select().count() == 1 and live.IdempotencyKey.select().count() == 1


def test_serve_migrates_an_old_database_at_start_and_serves_its_content(database_url, tmp_path):
    _old_database_with_rows(database_url)
    server = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(16), database_url=database_url)
    try:
        server.start()
        r = requests.get(
            f"{server.url}/v2/prod/team/app/manifests/v1",
            timeout=10,
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 200, r.text
        assert r.content == MANIFEST and r.headers["Docker-Content-Digest"] == DIGEST
    finally:
        server.stop()
    assert _applied(database_url) == VERSIONS


def test_replicas_migrating_at_once_apply_each_migration_once(database_url, tmp_path):
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda i: _berth("db", "migrate", url=database_url, data_dir=tmp_path / f"d{i}"), range(4))
        )
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    assert sum(r.stdout.count("applied 0001") for r in results) == 1
    assert _applied(database_url) == VERSIONS
