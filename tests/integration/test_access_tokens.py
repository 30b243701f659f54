"""Access tokens and members through the management API, enforced on the data plane; and the
rule that an organization always keeps an owner, member or token."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading

import pytest
import requests

from tests.support import postgres
from tests.support.idp import IdentityProvider
from tests.support.registry_client import RegistryClient, sha256
from tests.support.server import ROOT, Server
from tests.support.waiting import until


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
    return c.request(
        "POST", f"/v2/{registry}/app/blobs/uploads/", params={"digest": sha256(data)}, data=data
    ).status_code


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
    until(lambda: can_pull(c, "default") == 401, seconds=5, what="the token expires after its 1 s")


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


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x", "scope": "admin"},
        {"name": "x", "role": "god"},
        {"name": "x", "registry": "nope"},
        {"name": "x", "expires_in": -1},
        {"name": "x", "expires_in": "forever"},
        {"name": 3},
    ],
)
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
    # alice is not the last owner: the bootstrap owner token is one too (the owner tests below).
    assert owner.put("/members/alice", {"role": "admin"}).status_code == 200
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


# --- owners: an organization always keeps one ----------------------------------------------------
# An owner is an owner member or a live organization-wide owner token (app/services/owners.py).
# Each test starts a server of its own: they take the organization down to its last owner.


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture
def org(idp, tmp_path):
    server = Server(tmp_path / "data", token="berth_owner_" + secrets.token_hex(16), env=idp.env()).start()
    RegistryClient(server.url, server.session()).push_image("default/app", "v1")
    yield server
    server.stop()


def bootstrap_token_id(api: Api) -> int:
    return next(t["id"] for t in api.get("/tokens").json()["tokens"] if t["name"] == "bootstrap")


def still_works(server, secret: str) -> bool:
    return (
        Api(server, secret).get("/registries").status_code == 200
        and can_pull(client_for(server, secret), "default") == 200
    )


def refused(r: requests.Response, status: int, code: str, says: str) -> bool:
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["Content-Type"] == "application/problem+json" and problem["code"] == code, r.text
    assert says in problem["detail"], problem["detail"]
    return True


def test_an_admin_cannot_revoke_the_bootstrap_owner_token_and_the_owner_keeps_working(org):
    owner = Api(org, org.token)
    _, admin = owner.token(role="admin")
    r = Api(org, admin).delete(f"/tokens/{bootstrap_token_id(owner)}")
    assert refused(r, 403, "DENIED", "only an owner may revoke an owner token")
    assert still_works(org, org.token)


def test_an_admin_still_revokes_tokens_that_are_not_owner_tokens(org):
    owner = Api(org, org.token)
    _, admin = owner.token(role="admin")
    pull_id, _ = owner.token(scope="pull")
    assert Api(org, admin).delete(f"/tokens/{pull_id}").status_code == 204


def test_an_owner_revokes_another_owner_token(org):
    owner = Api(org, org.token)
    other_id, other = owner.token(role="owner")
    assert owner.delete(f"/tokens/{other_id}").status_code == 204
    assert Api(org, other).get("/registries").status_code == 401
    assert still_works(org, org.token)


def test_the_last_owner_credential_cannot_be_revoked_and_keeps_working(org):
    owner = Api(org, org.token)
    bootstrap = bootstrap_token_id(owner)
    r = owner.delete(f"/tokens/{bootstrap}")
    assert refused(r, 409, "CONFLICT", "create another owner first")
    assert still_works(org, org.token)
    # Another owner token, then the first may go; the new one is then the last.
    second_id, second = owner.token(role="owner")
    assert Api(org, second).delete(f"/tokens/{bootstrap}").status_code == 204
    assert refused(Api(org, second).delete(f"/tokens/{second_id}"), 409, "CONFLICT", "last owner")
    assert still_works(org, second)


def test_expired_and_registry_scoped_owner_tokens_do_not_count_as_owners(org):
    owner = Api(org, org.token)
    _, expiring = owner.token(role="owner", expires_in=1)
    owner.token(role="owner", registry="default")
    until(lambda: Api(org, expiring).get("/registries").status_code == 401, seconds=5, what="the token expires")
    assert refused(owner.delete(f"/tokens/{bootstrap_token_id(owner)}"), 409, "CONFLICT", "last owner")


def test_the_last_owner_member_may_go_while_an_owner_token_remains(org):
    owner = Api(org, org.token)
    assert owner.put("/members/alice", {"role": "owner"}).status_code == 201
    assert owner.put("/members/alice", {"role": "admin"}).status_code == 200  # demoted
    assert owner.put("/members/alice", {"role": "owner"}).status_code == 200
    assert owner.delete("/members/alice").status_code == 204


def test_the_last_owner_token_may_go_while_an_owner_member_remains_who_then_is_the_last(org, idp):
    owner = Api(org, org.token)
    assert owner.put("/members/alice", {"role": "owner"}).status_code == 201
    assert owner.delete(f"/tokens/{bootstrap_token_id(owner)}").status_code == 204
    assert Api(org, org.token).get("/registries").status_code == 401
    alice = Api(org, idp.token("alice"))  # an owner by her membership alone
    assert refused(alice.delete("/members/alice"), 409, "CONFLICT", "member 'alice' is the last owner")
    assert refused(alice.put("/members/alice", {"role": "admin"}), 409, "CONFLICT", "create another owner first")
    assert alice.get("/members/alice").json()["role"] == "owner"
    # Once she makes an owner token, she may step down.
    _, token = alice.token(role="owner")
    assert alice.delete("/members/alice").status_code == 204
    assert still_works(org, token)


def test_revocations_and_their_refusals_are_audited(org):
    owner = Api(org, org.token)
    bootstrap = bootstrap_token_id(owner)
    admin_id, admin = owner.token(role="admin")
    other_id, _ = owner.token(role="owner", name="the-other-owner")
    assert Api(org, admin).delete(f"/tokens/{bootstrap}").status_code == 403
    assert owner.delete(f"/tokens/{other_id}").status_code == 204
    assert owner.delete(f"/tokens/{bootstrap}").status_code == 409
    events = owner.get("/audit?action=token.revoke").json()["events"]  # newest first
    seen = [(e["actor"], e["detail"], e["outcome"], e["status"]) for e in events]
    assert seen == [
        (f"token:{bootstrap}", {"token_id": bootstrap}, "failure", 409),
        (f"token:{bootstrap}", {"token_id": other_id, "token_name": "the-other-owner"}, "success", 204),
        (f"token:{admin_id}", {"token_id": bootstrap}, "denied", 403),
    ]


def test_the_cli_prints_why_a_revocation_is_refused(org):
    owner = Api(org, org.token)
    bootstrap = bootstrap_token_id(owner)
    _, admin = owner.token(role="admin")

    def berth_as(secret: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env.update(BERTH_URL=org.url, BERTH_TOKEN=secret, HOME=str(org.data_dir.parent))
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "token", "revoke", str(bootstrap)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    for secret, says in ((admin, "only an owner may revoke an owner token"), (org.token, "create another owner first")):
        proc = berth_as(secret)
        assert proc.returncode == 1 and proc.stdout == "", proc
        assert proc.stderr.startswith("error: ") and says in proc.stderr and "Traceback" not in proc.stderr
    assert still_works(org, org.token)


@pytest.fixture(params=["one server", "two replicas on postgresql"])
def replicas(request, tmp_path):
    """Where the concurrent revocations go: one server (on the test database), or two replicas
    sharing one PostgreSQL database, so that the requests race in different processes."""
    token = "berth_owner_" + secrets.token_hex(16)
    if request.param == "one server":
        servers = [Server(tmp_path / "data", token=token)]
    else:
        url = postgres.create_database()
        servers = [Server(tmp_path / f"replica{i}", token=token, database_url=url) for i in range(2)]
    for server in servers:  # one at a time: the first bootstraps
        server.start()
    RegistryClient(servers[0].url, servers[0].session()).push_image("default/app", "v1")
    yield servers if len(servers) == 2 else servers * 2
    for server in servers:
        server.stop()


def test_two_concurrent_revocations_of_the_last_two_owner_tokens_leave_one(replicas):
    first, second = replicas
    last_id, last = bootstrap_token_id(Api(first, first.token)), first.token
    for _ in range(12):
        other_id, other = Api(first, last).token(role="owner")
        # Each token revokes itself, through its own server, both released at once. (Not each
        # other: the one that lost could then answer 401 before reaching the rule.)
        barrier = threading.Barrier(2)
        statuses: dict[int, int] = {}

        def revoke(server, secret: str, token_id: int) -> None:
            api = Api(server, secret)
            api.get("/registries")  # warm: the connection, and the token's last_used_at
            barrier.wait()
            statuses[token_id] = api.delete(f"/tokens/{token_id}").status_code

        threads = [
            threading.Thread(target=revoke, args=(first, last, last_id)),
            threading.Thread(target=revoke, args=(second, other, other_id)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(statuses.values()) == [204, 409], statuses
        if statuses[last_id] == 204:
            last_id, last = other_id, other
        assert still_works(second, last)
    live = [t["id"] for t in owner_tokens(first, last) if t["revoked_at"] is None]
    assert live == [last_id]


def owner_tokens(server, secret: str) -> list[dict]:
    return [t for t in Api(server, secret).get("/tokens?limit=1000").json()["tokens"] if t["role"] == "owner"]
