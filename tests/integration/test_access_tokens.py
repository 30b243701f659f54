"""Access tokens and members through the management API, enforced on the data plane."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

from tests.support.registry_client import RegistryClient, sha256


class Api:
    def __init__(self, server, token: str) -> None:
        self.url = f"{server.url}/api/v1/orgs/default"
        self.h = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=self.h, timeout=10)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers=self.h, timeout=10)

    def put(self, path: str, body: dict) -> requests.Response:
        return requests.put(self.url + path, json=body, headers=self.h, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, headers=self.h, timeout=10)

    def token(self, **body) -> tuple[int, str]:
        body.setdefault("name", "t-" + secrets.token_hex(3))
        r = self.post("/tokens", body)
        assert r.status_code == 201, r.text
        return r.json()["id"], r.json()["token"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from tests.support.server import Server

    server = Server(tmp_path_factory.mktemp("tokens") / "data", token="berth_owner_" + secrets.token_hex(16)).start()
    owner = Api(server, server.token)
    for name, visibility in (("other", "private"), ("pub", "public")):
        assert owner.post("/registries", {"name": name, "visibility": visibility}).status_code == 202
    owner_client = RegistryClient(server.url, server.session())
    for registry in ("default", "other", "pub"):
        owner_client.push_image(f"{registry}/app", "v1")
    yield server, owner
    server.stop()


def client_for(server, token: str) -> RegistryClient:
    return RegistryClient(server.url, server.session(token=token))


def can_pull(c: RegistryClient, registry: str) -> int:
    return c.request("GET", f"/v2/{registry}/app/manifests/v1").status_code


def can_push(c: RegistryClient, registry: str) -> int:
    data = secrets.token_bytes(16)
    return c.request("POST", f"/v2/{registry}/app/blobs/uploads/", params={"digest": sha256(data)}, data=data).status_code


def test_pull_token_for_one_registry(env):
    server, owner = env
    _, secret = owner.token(scope="pull", registry="default")
    c = client_for(server, secret)
    assert can_pull(c, "default") == 200
    assert can_push(c, "default") == 403
    assert can_pull(c, "other") == 403
    assert can_pull(c, "pub") == 200  # public: anyone may pull
    assert Api(server, secret).get("/registries").status_code == 403  # no management with a registry token


def test_push_token_for_the_org(env):
    server, owner = env
    _, secret = owner.token(scope="push")
    c = client_for(server, secret)
    for registry in ("default", "other", "pub"):
        assert can_pull(c, registry) == 200
        assert can_push(c, registry) == 201
    api = Api(server, secret)
    assert api.get("/registries").status_code == 200
    assert api.post("/members/someone", {"role": "reader"}).status_code == 405  # PUT, not POST
    assert api.put("/members/someone", {"role": "reader"}).status_code == 403  # developers don't manage members


def test_tokens_never_exceed_their_creator(env):
    server, owner = env
    _, reader = owner.token(scope="pull")
    api = Api(server, reader)
    r = api.post("/tokens", {"name": "escalate", "scope": "push"})
    assert r.status_code == 403 and r.headers["Content-Type"] == "application/problem+json"
    assert api.post("/tokens", {"name": "same", "scope": "pull"}).status_code == 201
    _, dev = owner.token(scope="push")
    assert Api(server, dev).post("/tokens", {"name": "admin", "role": "admin"}).status_code == 403


def test_revocation_is_immediate(env):
    server, owner = env
    token_id, secret = owner.token(scope="push")
    c = client_for(server, secret)
    assert can_pull(c, "default") == 200
    assert owner.delete(f"/tokens/{token_id}").status_code == 204
    r = c.request("GET", "/v2/default/app/manifests/v1")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    listed = {t["id"]: t for t in owner.get("/tokens").json()["tokens"]}
    assert listed[token_id]["revoked_at"] is not None


def test_expiry(env):
    server, owner = env
    _, secret = owner.token(scope="pull", expires_in=1)
    c = client_for(server, secret)
    assert can_pull(c, "default") == 200
    time.sleep(1.2)
    assert can_pull(c, "default") == 401


def test_listing_shows_metadata_never_secrets(env):
    server, owner = env
    token_id, secret = owner.token(scope="pull", name="ci pull")
    assert can_pull(client_for(server, secret), "default") == 200
    tokens = owner.get("/tokens").json()["tokens"]
    mine = next(t for t in tokens if t["id"] == token_id)
    assert mine["name"] == "ci pull" and mine["scope"] == "pull" and mine["role"] == "reader"
    assert mine["last_used_at"] is not None
    assert "token" not in mine and secret not in str(tokens)
    # Only the hash is stored.
    assert secret.encode() not in (server.data_dir / "berth.db").read_bytes()
    wal = server.data_dir / "berth.db-wal"
    assert not wal.exists() or secret.encode() not in wal.read_bytes()


@pytest.mark.parametrize("body", [
    {"name": ""}, {"name": "x", "scope": "admin"}, {"name": "x", "role": "god"}, {"name": "x", "registry": "nope"},
    {"name": "x", "expires_in": -1}, {"name": "x", "expires_in": "forever"}, {"name": 3},
])
def test_bad_token_requests(env, body):
    server, owner = env
    r = owner.post("/tokens", body)
    assert r.status_code in (400, 404), r.text
    assert r.headers["Content-Type"] == "application/problem+json"


def test_members_and_the_owner_rules(env):
    server, owner = env
    assert owner.put("/members/alice", {"role": "owner"}).status_code == 201
    assert owner.put("/members/bob", {"role": "admin"}).status_code == 201
    assert owner.put("/members/bob", {"role": "developer"}).status_code == 200
    assert owner.get("/members/bob").json()["role"] == "developer"
    assert [m["subject"] for m in owner.get("/members").json()["members"]] == ["alice", "bob"]
    # The last owner cannot be removed or demoted.
    r = owner.delete("/members/alice")
    assert r.status_code == 409
    assert owner.put("/members/alice", {"role": "admin"}).status_code == 409
    assert owner.put("/members/carol", {"role": "owner"}).status_code == 201
    assert owner.delete("/members/alice").status_code == 204
    # An admin cannot grant or remove owner.
    _, admin = owner.token(role="admin")
    admin_api = Api(server, admin)
    assert admin_api.put("/members/dave", {"role": "owner"}).status_code == 403
    assert admin_api.delete("/members/carol").status_code == 403
    assert admin_api.put("/members/dave", {"role": "reader"}).status_code == 201
    assert admin_api.delete("/members/dave").status_code == 204
    assert owner.get("/members/dave").status_code == 404
    assert owner.put("/members/bad%20name", {"role": "reader"}).status_code == 400
    assert owner.put("/members/erin", {"role": "emperor"}).status_code == 400
