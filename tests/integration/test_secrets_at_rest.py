"""Secrets at rest: an `Idempotency-Key` replay of a token or credential creation answers
without the secret (and says so), no secret is stored in clear in the database (SQLite file or
PostgreSQL tables) or anywhere under the data directory, and everything Berth writes there is
private to it (directories 0700, files 0600) whatever umask it was started with."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest
import requests

from tests.support import postgres
from tests.support.management import Api
from tests.support.registry_client import RegistryClient
from tests.support.server import Server


def _token(server: Server, key: str) -> tuple[requests.Response, requests.Response]:
    """A token created with an Idempotency-Key, and the answer to the same request again."""
    api = Api(server)
    body = {"name": "ci-" + key[:8], "scope": "push"}
    return tuple(api("POST", "/tokens", json=body, headers={"Idempotency-Key": key}) for _ in range(2))


def _credentials(server: Server, key: str) -> tuple[requests.Response, requests.Response]:
    api = Api(server)
    body = {"push": True, "k8s_secret_name": "pull-" + key[:8].lower()}
    return tuple(
        api("POST", "/registries/default/credentials", json=body, headers={"Idempotency-Key": key}) for _ in range(2)
    )


def _works(server: Server, username: str, password: str) -> bool:
    return requests.get(server.url + "/v2/", auth=(username, password), timeout=30).status_code == 200


def test_a_replayed_token_creation_answers_without_the_secret_and_says_so(fresh_server):
    server = fresh_server.start()
    first, replay = _token(server, secrets.token_hex(16))
    assert first.status_code == replay.status_code == 201, first.text
    assert "Secret-Withheld" not in first.headers and _works(server, "ci", first.json()["token"])
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.headers["Secret-Withheld"] == "true"
    again = replay.json()
    assert again["id"] == first.json()["id"] and again["token"] is None
    assert "revoke this token" in again["secret_withheld"]
    assert replay.headers["Location"] == first.headers["Location"]


def test_a_replayed_credentials_creation_answers_without_the_password_or_documents_holding_it(fresh_server):
    server = fresh_server.start()
    first, replay = _credentials(server, secrets.token_hex(16))
    assert first.status_code == replay.status_code == 201, first.text
    issued, again = first.json(), replay.json()
    assert _works(server, issued["username"], issued["password"])
    assert replay.headers["Secret-Withheld"] == "true" and again["secret_withheld"]
    assert again["token"]["id"] == issued["token"]["id"] and again["username"] == issued["username"]
    assert again["password"] is again["dockerconfigjson"] is again["kubernetes_secret"] is None
    assert issued["password"] not in replay.text


def _secret_forms(issued: dict) -> list[bytes]:
    """A credentials answer's secret in every form it takes: the password, docker's `auth`
    (base64 of user:password) and the pull Secret's base64 dockerconfigjson."""
    auth = next(iter(issued["dockerconfigjson"]["auths"].values()))["auth"]
    return [
        issued["password"].encode(),
        auth.encode(),
        issued["kubernetes_secret"]["data"][".dockerconfigjson"].encode(),
    ]


def _files_holding(directory: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [f"{path}: {needle[:8]!r}..." for needle in needles if needle in content]
    return found


def _rows_holding(database_url: str, needles: list[bytes]) -> list[str]:
    """Every row of every table of the PostgreSQL database, as text, searched for the secrets."""
    tables = [t for (t,) in postgres.sql(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    found = []
    for table in tables:
        for (row,) in postgres.sql(database_url, f'SELECT t::text FROM "{table}" t'):
            found += [f"{table}: {needle[:8]!r}..." for needle in needles if needle.decode() in row]
    return found


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_no_secret_of_a_created_token_or_credential_is_stored_in_clear(tmp_path, database):
    server = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32))
    if database == "postgres":
        server.database_url = postgres.create_database()
    elif postgres.ALL_SERVERS_ON_POSTGRES:
        pytest.skip("BERTH_TEST_DATABASE=postgres: every server is on PostgreSQL")
    server.start()
    try:
        token, _ = _token(server, secrets.token_hex(16))
        credentials, _ = _credentials(server, secrets.token_hex(16))
        needles = [token.json()["token"].encode(), *_secret_forms(credentials.json()), server.token.encode()]
        assert _works(server, "ci", token.json()["token"])  # used: its last use is recorded, not the secret
        assert _works(server, credentials.json()["username"], credentials.json()["password"])
        if database == "postgres":
            assert _rows_holding(server.database_url, needles) == []
    finally:
        server.stop()
    assert (server.data_dir / "berth.db").exists() or database == "postgres"
    assert _files_holding(server.data_dir, needles) == []
    assert not any(needle in server.log_path.read_bytes() for needle in needles)


def _use_every_kind_of_file(server: Server) -> None:
    """Blobs (in memory and spooled), an unfinished upload with its lock, manifests and tags, a
    cached tag list, a provisioned registry's pull Secret, a token."""
    client = RegistryClient(server.url, server.session())
    repo = "default/private/app"
    digest, manifest, _ = client.push_image(repo, "v1", layers=[secrets.token_bytes(3 * 1024 * 1024), b"small"])
    for i in range(256):  # enough tags for the list to be cached on disk
        assert client.push_manifest(repo, f"t{i:03d}", manifest).status_code == 201
    assert len(client.request("GET", f"/v2/{repo}/tags/list").json()["tags"]) == 257
    location = client.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    assert client.request("PATCH", location, data=b"x" * 1000, headers={"Content-Range": "0-999"}).status_code == 202
    api = Api(server)
    api.create("privy")
    assert api("POST", "/tokens", json={"name": "extra"}).status_code == 201


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_data_directory_is_0700_and_every_file_in_it_0600_whatever_the_umask(tmp_path, umask):
    server = Server(tmp_path / "data", token="", env={"BERTH_BOOTSTRAP_TOKEN": ""})  # token generated and saved
    server.data_dir.mkdir()
    server.data_dir.chmod(0o755)  # as an earlier version (or the operator) left it
    previous = os.umask(umask)  # the server process inherits it
    try:
        server.start()
    finally:
        os.umask(previous)
    try:
        server.token = (server.data_dir / "bootstrap-token").read_text().strip()
        _use_every_kind_of_file(server)
        assert list((server.data_dir / "cache" / "tags").iterdir()), "the tag list cache was written"
        assert list((server.data_dir / "manifests").rglob("*.yaml")), "the registry's footprint was written"
    finally:
        server.stop()
    modes = {path: stat.S_IMODE(path.lstat().st_mode) for path in [server.data_dir, *server.data_dir.rglob("*")]}
    assert {oct(mode) for path, mode in modes.items() if path.is_dir()} == {"0o700"}
    wrong = {
        str(path.relative_to(server.data_dir)): oct(mode)
        for path, mode in modes.items()
        if not path.is_dir() and mode != 0o600
    }
    assert wrong == {}
    assert any(p.name == "berth.db" for p in modes) or postgres.ALL_SERVERS_ON_POSTGRES
    assert any(p.name == "bootstrap-token" for p in modes)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_upgrading_forgets_the_token_and_credential_answers_an_earlier_version_stored(tmp_path, database):
    from app.db import migrations
    from app.db import models as live
    from app.db.setup import database_for

    url = f"sqlite:///{tmp_path / 'berth.db'}" if database == "sqlite" else postgres.create_database()
    db = database_for(url)
    version = next(m.version for m in migrations.available() if m.name == "disk_secrets")
    migrations.migrate(db, target=version - 1)
    with db.bind_ctx(live.ALL_MODELS), db.connection_context():
        for key, path in (
            ("t", "/api/v1/orgs/acme/tokens"),
            ("c", "/api/v1/orgs/acme/registries/r/credentials"),
            ("r", "/api/v1/orgs/acme/registries"),
        ):
            live.IdempotencyKey.create(
                subject="alice",
                key=key,
                method="POST",
                path=path,
                fingerprint="f" * 64,
                status=201,
                body='{"token": "berth_secret"}',
            )
    migrations.migrate(db)
    with db.bind_ctx(live.ALL_MODELS), db.connection_context():
        assert [row.key for row in live.IdempotencyKey.select()] == ["r"]
