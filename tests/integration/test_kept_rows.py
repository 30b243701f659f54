"""The rows a server process keeps between data-plane reads (the registry, the access token:
app/db/checked.py) never outlive their change in the database. A real `berth serve` with two
worker processes on the real PostgreSQL; keep-alive connections opened and used before each
change, so that each process has the rows kept, are used again after it: a revoked token (Basic,
and the registry token issued for it), a registry made private, a registry deleted and its name
taken again are answered as the database says at once, by every process, for pulls and pushes.
A row changed by someone else (another replica) is read again and the read answered whole, its
bytes and headers as they should be, a push stored whole, and the server counts the requests it
ran again."""

from __future__ import annotations

import json
import re
import secrets

import pytest
import requests

from tests.support import postgres
from tests.support.management import Api
from tests.support.registry_client import RegistryClient, sha256
from tests.support.server import Server

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
CONNECTIONS = 8  # keep-alive connections per check; each stays with the process that accepted it


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    server = Server(
        tmp_path_factory.mktemp("kept") / "data",
        token="berth_" + secrets.token_urlsafe(32),
        database_url=postgres.create_database(),
        env={"BERTH_WORKERS": "2"},
        metrics=True,
    ).start()
    owner = RegistryClient(server.url, server.session())
    digest, body, _ = owner.push_image("default/app", "v1", layers=[secrets.token_bytes(3000)])
    yield server, digest, body
    server.stop()


def sessions(auth=None, headers=None) -> list[requests.Session]:
    made = []
    for _ in range(CONNECTIONS):
        s = requests.Session()
        s.auth = auth
        s.headers.update(headers or {})
        made.append(s)
    return made


def pull_statuses(server, conns: list[requests.Session], name: str = "default/app") -> set[int]:
    """Each connection's manifest GET and HEAD: the set of statuses seen."""
    seen = set()
    for s in conns:
        for method in ("GET", "HEAD"):
            seen.add(s.request(method, f"{server.url}/v2/{name}/manifests/v1", headers=ACCEPT, timeout=10).status_code)
    return seen


def token(server, scope: str = "pull") -> tuple[int, str]:
    r = Api(server)("POST", "/tokens", json={"name": "t-" + secrets.token_hex(3), "scope": scope})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


def kept_rows_changed(server) -> float:
    text = requests.get(server.metrics_url, timeout=10).text
    found = re.search(r"^berth_kept_rows_changed_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_revoked_access_token_is_refused_at_once_by_every_process(env):
    server, _, _ = env
    token_id, secret = token(server)
    conns = sessions(auth=("ci", secret))
    assert pull_statuses(server, conns) == {200}
    assert Api(server)("DELETE", f"/tokens/{token_id}").status_code == 204
    assert pull_statuses(server, conns) == {401}
    r = conns[0].get(f"{server.url}/v2/default/app/manifests/v1", headers=ACCEPT, timeout=10)
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED" and r.headers["WWW-Authenticate"].startswith("Bearer ")


def test_a_registry_token_is_refused_at_once_when_its_access_token_is_revoked(env):
    server, _, _ = env
    token_id, secret = token(server)
    r = requests.get(
        f"{server.url}/auth/token",
        params={"service": server.host, "scope": "repository:default/app:pull"},
        auth=("ci", secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    conns = sessions(headers={"Authorization": f"Bearer {r.json()['token']}"})
    assert pull_statuses(server, conns) == {200}
    assert Api(server)("DELETE", f"/tokens/{token_id}").status_code == 204
    assert pull_statuses(server, conns) == {401}


def test_a_registry_made_private_refuses_anonymous_pulls_at_once_and_public_again_serves_them(env):
    server, _, _ = env
    api = Api(server)
    name = "pub" + secrets.token_hex(3)
    api.create(name, visibility="public")
    RegistryClient(server.url, server.session()).push_image(f"{name}/app", "v1")
    conns = sessions()
    assert pull_statuses(server, conns, f"{name}/app") == {200}
    assert api("PATCH", f"/registries/{name}", json={"visibility": "private"}).status_code == 200
    assert pull_statuses(server, conns, f"{name}/app") == {401}
    assert api("PATCH", f"/registries/{name}", json={"visibility": "public"}).status_code == 200
    assert pull_statuses(server, conns, f"{name}/app") == {200}


def test_a_deleted_registry_whose_name_is_taken_again_is_the_new_one_for_every_process(env):
    server, _, _ = env
    api = Api(server)
    name = "again" + secrets.token_hex(3)
    api.create(name)
    old_digest, _, _ = RegistryClient(server.url, server.session()).push_image(f"{name}/app", "v1")
    scoped = api("POST", f"/registries/{name}/credentials", json={"push": True}).json()
    old_conns = sessions(auth=(scoped["username"], scoped["password"]))
    owner_conns = sessions(auth=("admin", server.token))
    assert pull_statuses(server, old_conns, f"{name}/app") == {200}
    assert pull_statuses(server, owner_conns, f"{name}/app") == {200}

    r = api("DELETE", f"/registries/{name}")
    assert r.status_code == 202 and api.wait(r.json()["operation"])["state"] == "succeeded"
    assert pull_statuses(server, owner_conns, f"{name}/app") == {404}
    api.create(name)
    new_digest, _, _ = RegistryClient(server.url, server.session()).push_image(
        f"{name}/app", "v1", layers=[secrets.token_bytes(100)]
    )
    assert new_digest != old_digest
    assert pull_statuses(server, old_conns, f"{name}/app") == {401}  # its credentials died with it
    for s in owner_conns:
        r = s.get(f"{server.url}/v2/{name}/app/manifests/v1", headers=ACCEPT, timeout=10)
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == new_digest


def test_a_row_changed_by_another_replica_is_read_again_and_the_read_answered_whole(env):
    server, digest, body = env
    manifest = requests.get(f"{server.url}/v2/default/app/manifests/v1", headers=ACCEPT, auth=("admin", server.token))
    layer = manifest.json()["layers"][0]["digest"]
    conns = sessions(auth=("admin", server.token))
    assert pull_statuses(server, conns) == {200}
    before = kept_rows_changed(server)
    # What another replica does once a minute per token, and an administrator any time.
    postgres.sql(server.database_url, "UPDATE access_token SET last_used_at = now() - interval '1 hour'")
    postgres.sql(server.database_url, "UPDATE registry SET created_at = created_at")
    for s in conns:
        r = s.get(f"{server.url}/v2/default/app/manifests/v1", headers=ACCEPT, timeout=10)
        assert r.status_code == 200 and r.content == body and r.headers["Docker-Content-Digest"] == digest
        assert r.headers["Content-Type"] == ACCEPT["Accept"] and len(r.headers["Docker-Distribution-API-Version"]) < 20
    assert kept_rows_changed(server) >= before + 2  # at least one read run again in each process
    postgres.sql(server.database_url, "UPDATE registry SET created_at = created_at")
    for s in conns:
        r = s.get(f"{server.url}/v2/default/app/blobs/{layer}", timeout=10)
        assert r.status_code == 200 and len(r.content) == 3000 and r.headers["Docker-Content-Digest"] == layer
        r = s.head(f"{server.url}/v2/default/app/manifests/v1", headers=ACCEPT, timeout=10)
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(body) and not r.content


def test_a_push_with_a_revoked_access_token_is_refused_at_once_and_nothing_is_stored(env):
    server, _, _ = env
    token_id, secret = token(server, scope="push")
    conns = sessions(auth=("ci", secret))
    assert pull_statuses(server, conns) == {200}
    assert Api(server)("DELETE", f"/tokens/{token_id}").status_code == 204
    for i, s in enumerate(conns):
        client = RegistryClient(server.url, s)
        r = client.request("POST", "/v2/default/revoked/blobs/uploads/")
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        r = client.request("PUT", f"/v2/default/revoked/manifests/t{i}", data=b"{}", headers=ACCEPT)
        assert r.status_code == 401
    r = requests.get(f"{server.url}/v2/default/revoked/tags/list", auth=("admin", server.token), timeout=10)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_a_push_after_a_kept_row_changed_elsewhere_is_run_again_and_stored_whole(env):
    server, _, _ = env
    owner = RegistryClient(server.url, server.session())
    _, manifest, _ = owner.push_image("default/again", "base")  # its blobs, for the pushes below
    bodies = [json.dumps({**json.loads(manifest), "annotations": {"n": str(i)}}).encode() for i in range(CONNECTIONS)]
    conns = sessions(auth=("admin", server.token))
    assert pull_statuses(server, conns) == {200}
    before = kept_rows_changed(server)
    postgres.sql(server.database_url, "UPDATE registry SET created_at = created_at")
    for i, (s, body) in enumerate(zip(conns, bodies, strict=True)):  # each the first request after the change
        r = s.put(
            f"{server.url}/v2/default/again/manifests/p{i}",
            data=body,
            headers={"Content-Type": ACCEPT["Accept"]},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == sha256(body)
    assert kept_rows_changed(server) >= before + 2
    for i, body in enumerate(bodies):
        assert owner.request("GET", f"/v2/default/again/manifests/p{i}", headers=ACCEPT).content == body
