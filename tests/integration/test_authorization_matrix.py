"""Every route of both planes x every kind of caller x public/private registry, over HTTP
against the real server: allowed or denied, with the right status. Data-plane routes are tried
in every addressing form of the production topology (path, platform host, verified custom
domain, trusted gateway header) and with both ways of presenting a credential (Basic on the
request, and the Docker token flow), against two organizations.

The expectations come from the product page's permission table, written out here on their
own (not read from app/auth), so a change to the gate that breaks the table fails this test.
The tests after the matrix are the tenant boundary's attacks: tokens presented where they were
not issued, a registry name deleted and taken by another organization within the second, and
the custom-domain confusion of issue 15.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from tests.support.addressing import MODES, Endpoints
from tests.support.dns_server import DnsServer
from tests.support.idp import IdentityProvider
from tests.support.registry_client import OCI_MANIFEST, RegistryClient, sha256
from tests.support.server import ROOT, Server
from tests.support.waiting import until

CUSTOM_DOMAINS = {"priv": "images.priv-acme.test", "pub": "images.pub-acme.test"}

# The product page: what each role may do, organization-wide.
PERMISSIONS = {
    "owner": {"pull", "push", "create_registry", "delete_registry", "browse", "manage_members", "create_token"},
    "admin": {"pull", "push", "create_registry", "delete_registry", "browse", "manage_members", "create_token"},
    "developer": {"pull", "push", "create_registry", "delete_registry", "browse", "create_token"},
    "reader": {"pull", "browse", "create_token"},
}


@dataclass
class Caller:
    name: str
    password: str | None  # Basic password on /v2 and Bearer on /api (None: anonymous)
    role: str | None = None  # role in org `default`
    registry: str | None = None  # the one registry a scoped token is limited to
    valid: bool = True  # a credential that must be refused outright


@dataclass
class Route:
    name: str
    plane: str  # data | api | base | catalog
    action: str
    ok: int
    run: object = field(repr=False)


class World:
    """The server, two registries (private `priv`, public `pub`), content, and an owner client."""

    def __init__(self, server: Server, idp: IdentityProvider) -> None:
        self.server, self.idp = server, idp
        self.endpoints = Endpoints(server.url, custom=dict(CUSTOM_DOMAINS))
        self.mode, self.flow = "path", "basic"  # how the matrix's data-plane calls are made now
        self.owner = RegistryClient(server.url, server.session())
        self.counter = itertools.count()
        self.manifests = {}
        for registry in ("priv", "pub", "third"):
            digest, body, manifest = self.owner.push_image(f"{registry}/app", "v1")
            self.manifests[registry] = (digest, body, manifest)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}x{secrets.token_hex(2)}"

    def owner_api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(
            method,
            f"{self.server.url}/api/v1/orgs/default{path}",
            timeout=20,
            headers={"Authorization": f"Bearer {self.server.token}"},
            **kw,
        )


def v2(world: World, caller: Caller, method: str, path: str, **kw) -> requests.Response:
    return world.endpoints.request(world.mode, method, path, password=caller.password, flow=world.flow, **kw)


def api(world: World, caller: Caller, method: str, path: str, **kw) -> requests.Response:
    headers = {"Authorization": f"Bearer {caller.password}"} if caller.password is not None else {}
    return requests.request(method, f"{world.server.url}/api/v1/orgs/default{path}", headers=headers, timeout=20, **kw)


def data_routes(registry: str) -> list[Route]:
    repo = f"/v2/{registry}/app"

    def blob_digest(w):
        return w.manifests[registry][2]["layers"][0]["digest"]

    def delete_tag(w, c):
        tag = w.unique("del")
        assert w.owner.push_manifest(f"{registry}/app", tag, w.manifests[registry][1]).status_code == 201
        return v2(w, c, "DELETE", f"{repo}/manifests/{tag}")

    def delete_blob(w, c):
        digest = w.owner.push_blob(f"{registry}/app", secrets.token_bytes(12))
        return v2(w, c, "DELETE", f"{repo}/blobs/{digest}")

    def upload(w):
        return w.owner.request("POST", f"{repo}/blobs/uploads/").headers["Location"]

    def finish_upload(w, c):
        data = secrets.token_bytes(10)
        return v2(w, c, "PUT", upload(w), params={"digest": sha256(data)}, data=data)

    return [
        Route(f"{registry}: tags list", "data", "pull", 200, lambda w, c: v2(w, c, "GET", f"{repo}/tags/list")),
        Route(f"{registry}: GET manifest", "data", "pull", 200, lambda w, c: v2(w, c, "GET", f"{repo}/manifests/v1")),
        Route(f"{registry}: HEAD manifest", "data", "pull", 200, lambda w, c: v2(w, c, "HEAD", f"{repo}/manifests/v1")),
        Route(
            f"{registry}: GET blob", "data", "pull", 200, lambda w, c: v2(w, c, "GET", f"{repo}/blobs/{blob_digest(w)}")
        ),
        Route(
            f"{registry}: HEAD blob",
            "data",
            "pull",
            200,
            lambda w, c: v2(w, c, "HEAD", f"{repo}/blobs/{blob_digest(w)}"),
        ),
        Route(
            f"{registry}: referrers",
            "data",
            "pull",
            200,
            lambda w, c: v2(w, c, "GET", f"{repo}/referrers/{w.manifests[registry][0]}"),
        ),
        Route(
            f"{registry}: start upload", "data", "push", 202, lambda w, c: v2(w, c, "POST", f"{repo}/blobs/uploads/")
        ),
        Route(f"{registry}: upload status", "data", "push", 204, lambda w, c: v2(w, c, "GET", upload(w))),
        Route(
            f"{registry}: upload chunk", "data", "push", 202, lambda w, c: v2(w, c, "PATCH", upload(w), data=b"chunk")
        ),
        Route(f"{registry}: finish upload", "data", "push", 201, finish_upload),
        Route(f"{registry}: cancel upload", "data", "push", 204, lambda w, c: v2(w, c, "DELETE", upload(w))),
        Route(
            f"{registry}: PUT manifest",
            "data",
            "push",
            201,
            lambda w, c: v2(
                w,
                c,
                "PUT",
                f"{repo}/manifests/{w.unique('t')}",
                data=w.manifests[registry][1],
                headers={"Content-Type": OCI_MANIFEST},
            ),
        ),
        Route(f"{registry}: DELETE tag", "data", "push", 202, delete_tag),
        Route(f"{registry}: DELETE blob", "data", "push", 202, delete_blob),
    ]


def member_to_delete(w, c):
    subject = w.unique("m")
    assert w.owner_api("PUT", f"/members/{subject}", json={"role": "reader"}).status_code == 201
    return api(w, c, "DELETE", f"/members/{subject}")


API_ROUTES = [
    Route("api: list registries", "api", "browse", 200, lambda w, c: api(w, c, "GET", "/registries")),
    Route(
        "api: create registry",
        "api",
        "create_registry",
        202,
        lambda w, c: api(w, c, "POST", "/registries", json={"name": w.unique("r")}),
    ),
    Route("api: list members", "api", "browse", 200, lambda w, c: api(w, c, "GET", "/members")),
    Route(
        "api: put member",
        "api",
        "manage_members",
        201,
        lambda w, c: api(w, c, "PUT", f"/members/{w.unique('m')}", json={"role": "reader"}),
    ),
    Route("api: delete member", "api", "manage_members", 204, member_to_delete),
    Route("api: list tokens", "api", "create_token", 200, lambda w, c: api(w, c, "GET", "/tokens")),
    Route(
        "api: create pull token",
        "api",
        "create_token",
        201,
        lambda w, c: api(w, c, "POST", "/tokens", json={"name": w.unique("tok"), "scope": "pull"}),
    ),
    Route("api: read audit", "api", "manage_members", 200, lambda w, c: api(w, c, "GET", "/audit")),
    Route(
        "api: follow an operation",
        "api",
        "browse",
        200,
        lambda w, c: requests.get(
            f"{w.server.url}/api/v1/operations/{w.operation_id}",
            timeout=20,
            headers={"Authorization": f"Bearer {c.password}"} if c.password is not None else {},
        ),
    ),
]
# Routes on one registry: the caller's role there decides; a registry out of reach is not found.
REGISTRY_API_ROUTES = [
    Route(
        f"{registry}: api show registry",
        "api-registry",
        "browse",
        200,
        lambda w, c, r=registry: api(w, c, "GET", f"/registries/{r}"),
    )
    for registry in ("priv", "pub")
] + [
    Route(
        "priv: api browse repositories",
        "api-registry",
        "browse",
        200,
        lambda w, c: api(w, c, "GET", "/registries/priv/repositories"),
    ),
    Route(
        "priv: api list tags",
        "api-registry",
        "browse",
        200,
        lambda w, c: api(w, c, "GET", "/registries/priv/repositories/app/tags"),
    ),
    Route(
        "priv: api pull credentials",
        "api-registry",
        "create_token",
        201,
        lambda w, c: api(w, c, "POST", "/registries/priv/credentials", json={}),
    ),
    Route(
        "priv: api change registry",
        "api-registry",
        "create_registry",
        200,
        lambda w, c: api(w, c, "PATCH", "/registries/priv", json={"visibility": "private"}),
    ),
    Route("priv: api usage", "api-registry", "browse", 200, lambda w, c: api(w, c, "GET", "/registries/priv/usage")),
    Route(
        "priv: api repository",
        "api-registry",
        "browse",
        200,
        lambda w, c: api(w, c, "GET", "/registries/priv/repositories/app"),
    ),
    Route(
        "priv: api manifest",
        "api-registry",
        "browse",
        200,
        lambda w, c: api(w, c, "GET", f"/registries/priv/repositories/app/manifests/{w.manifests['priv'][0]}"),
    ),
    Route(
        "priv: api retention policy",
        "api-registry",
        "browse",
        200,
        lambda w, c: api(w, c, "GET", "/registries/priv/retention"),
    ),
    Route(
        "priv: api set retention policy",
        "api-registry",
        "push",
        200,
        lambda w, c: api(w, c, "PUT", "/registries/priv/retention", json={"keep_last": 100000}),
    ),
    Route(
        "priv: api retention preview",
        "api-registry",
        "browse",
        200,
        lambda w, c: api(w, c, "POST", "/registries/priv/retention/preview", json={}),
    ),
    Route(
        "priv: api garbage collection (dry run)",
        "api-registry",
        "delete_registry",
        200,
        lambda w, c: api(w, c, "POST", "/registries/priv/gc", json={"dry_run": True}),
    ),
    Route(
        "priv: api verify custom domain",
        "api-registry",
        "create_registry",
        200,
        lambda w, c: api(w, c, "POST", "/registries/priv/custom-domain/verify"),
    ),
    Route("fresh: api delete registry", "api-registry", "delete_registry", 202, lambda w, c: delete_registry(w, c)),
]


def delete_registry(w, c):
    name = w.unique("del")
    r = w.owner_api("POST", "/registries", json={"name": name})
    assert r.status_code == 202, r.text
    return api(w, c, "DELETE", f"/registries/{name}")


GLOBAL_ROUTES = [
    Route("v2 base", "base", "any", 200, lambda w, c: v2(w, c, "GET", "/v2/")),
    Route("catalog", "catalog", "any", 200, lambda w, c: v2(w, c, "GET", "/v2/_catalog")),
]
ROUTES = data_routes("priv") + data_routes("pub") + API_ROUTES + REGISTRY_API_ROUTES + GLOBAL_ROUTES


def expected(route: Route, caller: Caller, flow: str = "basic") -> int:
    """The status the permission table gives this caller on this route. Through the token flow,
    a refusal to an authenticated caller is the token spec's 401 (insufficient_scope)."""
    if flow == "token" and route.plane == "data" and route.action == "pull" and route.name.startswith("pub:"):
        return route.ok  # the client tries without credentials first, and a public pull needs none
    want = _expected(route, caller)
    return 401 if flow == "token" and want == 403 and route.plane == "data" else want


def _expected(route: Route, caller: Caller) -> int:
    if not caller.valid:
        return 401
    anonymous = caller.password is None
    if route.plane in ("base", "catalog"):
        return 401 if anonymous else route.ok
    if route.plane == "api":
        if anonymous:
            return 401
        if caller.role is None:
            return 404  # not a member: the organization is not even confirmed to exist
        allowed = caller.registry is None and route.action in PERMISSIONS.get(caller.role, set())
        return route.ok if allowed else 403
    if route.plane == "api-registry":
        if anonymous:
            return 401
        if caller.role is None or caller.registry not in (None, route.name.split(":")[0]):
            return 404
        return route.ok if route.action in PERMISSIONS.get(caller.role, set()) else 403
    registry = route.name.split(":")[0]
    if registry == "pub" and route.action == "pull":
        return route.ok
    if anonymous:
        return 401
    in_reach = caller.registry in (None, registry)
    allowed = in_reach and route.action in PERMISSIONS.get(caller.role, set())
    return route.ok if allowed else 403


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    idp = IdentityProvider()
    dns_server = DnsServer().restart()
    data = tmp_path_factory.mktemp("matrix") / "data"
    owner_token = "berth_owner_" + secrets.token_hex(16)
    # The test client stands in for the gateway too: it is the trusted proxy.
    server = Server(
        data,
        token=owner_token,
        env={
            **idp.env(),
            "BERTH_LOG_LEVEL": "debug",
            "BERTH_TRUSTED_PROXIES": "127.0.0.1/32",
            "BERTH_DNS_RESOLVER": dns_server.address,
        },
    ).start()
    for name, visibility in (("priv", "private"), ("pub", "public"), ("third", "private")):
        r = requests.post(
            f"{server.url}/api/v1/orgs/default/registries",
            json={"name": name, "visibility": visibility},
            headers={"Authorization": f"Bearer {owner_token}"},
            timeout=20,
        )
        assert r.status_code == 202
    other_org = subprocess.run(
        [sys.executable, "-m", "app.cli", "admin", "org", "create", "otherorg", "--data-dir", str(data)],
        cwd=ROOT,
        # The server's database (BERTH_TEST_DATABASE=postgres: a PostgreSQL one), not a new SQLite
        # file in the data directory.
        env={**os.environ, **({"BERTH_DATABASE_URL": server.database_url} if server.database_url else {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other_org.returncode == 0, other_org.stderr
    other_owner = other_org.stdout.strip()
    r = requests.post(
        f"{server.url}/api/v1/orgs/otherorg/registries",
        json={"name": "bpriv"},
        headers={"Authorization": f"Bearer {other_owner}"},
        timeout=20,
    )
    assert r.status_code == 202, r.text
    w = World(server, idp)
    w.dns, w.other_owner = dns_server, other_owner
    w.operation_id = (
        requests.get(
            f"{server.url}/api/v1/orgs/default/registries/third",
            timeout=20,
            headers={"Authorization": f"Bearer {owner_token}"},
        )
        .json()["links"]["operation"]
        .rsplit("/", 1)[1]
    )
    for registry, domain in CUSTOM_DOMAINS.items():
        verify_custom_domain(w, registry, domain)
    RegistryClient(server.url, server.session(other_owner)).push_image("bpriv/app", "v1")

    def token(**body):
        body.setdefault("name", w.unique("caller"))
        r = w.owner_api("POST", "/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def credentials(registry, push):
        r = w.owner_api("POST", f"/registries/{registry}/credentials", json={"push": push})
        assert r.status_code == 201, r.text
        return r.json()["password"]

    expired = token(scope="push", expires_in=1)
    revoked = token(scope="push")
    assert w.owner_api("DELETE", f"/tokens/{revoked['id']}").status_code == 204
    good_jwt = idp.token("idp-owner", orgs={"default": "owner"})
    header, payload, signature = good_jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    public_pem = (
        idp.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_input = _b64({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}) + "." + payload
    hs = base64.urlsafe_b64encode(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    w.callers = [
        Caller("owner token", token(role="owner")["token"], "owner"),
        Caller("admin token", token(role="admin")["token"], "admin"),
        Caller("developer token", token(role="developer")["token"], "developer"),
        Caller("reader token", token(role="reader")["token"], "reader"),
        Caller("IdP developer", idp.token("dev-user", orgs={"default": "developer"}), "developer"),
        Caller("IdP reader by membership", idp.token("member-reader"), "reader"),
        Caller("anonymous", None),
        Caller("pull-only token for priv", token(scope="pull", registry="priv")["token"], "reader", registry="priv"),
        Caller(
            "push token of another registry",
            token(scope="push", registry="third")["token"],
            "developer",
            registry="third",
        ),
        Caller("owner of another org", other_owner, None),
        Caller("IdP owner of another org", idp.token("b-owner", orgs={"otherorg": "owner"}), None),
        Caller("credentials (pull) for priv", credentials("priv", push=False), "reader", registry="priv"),
        Caller("credentials (push) for priv", credentials("priv", push=True), "developer", registry="priv"),
        Caller(
            "a registry token used as a password",
            w.endpoints.token("path", "priv", "repository:priv/app:pull,push", owner_token),
            valid=False,
        ),
        Caller("IdP user without a role", idp.token("nobody"), None),
        Caller("expired token", expired["token"], valid=False),
        Caller("revoked token", revoked["token"], valid=False),
        Caller("tampered IdP JWT", header + "." + _b64({**claims, "sub": "x"}) + "." + signature, valid=False),
        Caller(
            "IdP JWT from the wrong issuer",
            idp.token("a", orgs={"default": "owner"}, iss="https://evil.test"),
            valid=False,
        ),
        Caller("IdP JWT for the wrong audience", idp.token("a", orgs={"default": "owner"}, aud="other"), valid=False),
        Caller("alg none JWT", _b64({"alg": "none", "typ": "JWT"}) + "." + payload + ".", valid=False),
        Caller("HS256 JWT keyed with the public key", hs_input + "." + hs, valid=False),
    ]
    assert w.owner_api("PUT", "/members/member-reader", json={"role": "reader"}).status_code == 201
    until(
        lambda: requests.get(f"{server.url}/v2/", auth=("x", expired["token"]), timeout=20).status_code == 401,
        seconds=5,
        what="the expired token expires",
    )
    yield w
    server.stop()
    idp.stop()
    dns_server.stop()


def verify_custom_domain(w: World, registry: str, domain: str, org: str = "default", token: str | None = None) -> None:
    """Claim `domain` for `registry`, publish its TXT record, verify it."""
    headers = {"Authorization": f"Bearer {token or w.server.token}"}
    base = f"{w.server.url}/api/v1/orgs/{org}/registries/{registry}"
    r = requests.patch(base, json={"custom_domain": domain}, headers=headers, timeout=20)
    assert r.status_code == 200 and r.json()["custom_domain_status"] == "pending", r.text
    record = r.json()["custom_domain_verification"]
    w.dns.set_txt(record["name"], record["value"])
    r = requests.post(f"{base}/custom-domain/verify", headers=headers, timeout=20)
    assert r.status_code == 202 and r.json()["custom_domain_status"] == "verified", r.text


def test_authorization_matrix(world):
    """Every caller on every route; the data plane's routes again in every addressing form and
    through the token flow."""
    failures, cases = [], 0
    data_routes_ = [r for r in ROUTES if r.plane == "data"]
    for mode in MODES:
        for flow in ("basic", "token"):
            world.mode, world.flow = mode, flow
            routes = ROUTES if (mode, flow) == ("path", "basic") else data_routes_
            for caller in world.callers:
                for route in routes:
                    want = expected(route, caller, flow)
                    got = route.run(world, caller).status_code
                    cases += 1
                    if got != want:
                        failures.append(f"{caller.name} / {route.name} ({mode}, {flow}): expected {want}, got {got}")
    world.mode, world.flow = "path", "basic"
    print(
        f"\nauthorization matrix: {cases} cases ({len(world.callers)} callers x {len(ROUTES)} routes, "
        f"data-plane routes in {len(MODES)} addressing forms x 2 ways to present a credential)"
    )
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:200])
    assert cases == len(world.callers) * (len(ROUTES) + (len(MODES) * 2 - 1) * len(data_routes_)) >= 4000


def test_no_credential_reaches_the_log(world):
    """After every kind of credential has been used (and refused), none appears in the log."""
    token = requests.get(
        f"{world.server.url}/auth/token",
        auth=("u", world.server.token),
        timeout=20,
        params={"service": world.server.host, "scope": "repository:priv/app:pull", "offline_token": "true"},
    ).json()
    requests.get(
        f"{world.server.url}/v2/priv/app/tags/list", headers={"Authorization": f"Bearer {token['token']}"}, timeout=20
    )
    creds = requests.post(
        f"{world.server.url}/api/v1/orgs/default/registries/priv/credentials",
        json={"push": True},
        headers={"Authorization": f"Bearer {world.server.token}"},
        timeout=20,
    ).json()
    assert (
        requests.get(
            f"{world.server.url}/v2/priv/app/tags/list", auth=(creds["username"], creds["password"]), timeout=20
        ).status_code
        == 200
    )
    # The pull-only tokens the lifecycle worker made for each registry's pull Secret.
    pull_secrets = []
    for rendered in (world.server.data_dir / "manifests").rglob("*.yaml"):
        text = rendered.read_text()
        if "dockerconfigjson" in text:
            pull_secrets += re.findall(
                r"berth_[A-Za-z0-9_-]{20,}",
                base64.b64decode(re.search(r"\.dockerconfigjson: ?['\"]?([A-Za-z0-9+/=]+)", text).group(1)).decode(),
            )
    assert pull_secrets
    logs = world.server.logs()
    assert "DEBUG" in logs or "INFO" in logs  # the log was written at all
    secrets_used = [c.password for c in world.callers if c.password] + [
        world.server.token,
        token["token"],
        token["refresh_token"],
        creds["password"],
        *pull_secrets,
    ]
    for secret in secrets_used:
        for piece in (secret, secret[-24:]):
            assert piece not in logs
    assert "Authorization" not in logs and "Basic " not in logs


# --- the tenant boundary's attacks -------------------------------------------------------------


def _get_manifest(world, mode: str, registry: str, token: str) -> int:
    return world.endpoints.request(
        mode, "GET", f"/v2/{registry}/app/manifests/v1", flow="basic", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def _start_upload(world, mode: str, registry: str, token: str) -> int:
    return world.endpoints.request(
        mode, "POST", f"/v2/{registry}/app/blobs/uploads/", flow="basic", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_a_registry_token_works_only_on_the_registry_and_endpoint_it_was_issued_for(world):
    """Push tokens of both organizations' owners, for each registry in each addressing form, tried
    on every registry in every form: a token works where it was issued (the host form and the
    gateway share the platform host) and nowhere else."""
    owners = {"priv": world.server.token, "pub": world.server.token, "bpriv": world.other_owner}
    modes = {"priv": MODES, "pub": MODES, "bpriv": ("path", "host", "gateway")}
    tokens = [
        (
            registry,
            mode,
            world.endpoints.token(mode, registry, f"repository:{_name(mode, registry)}:pull,push", owners[registry]),
        )
        for registry in owners
        for mode in modes[registry]
    ]
    leaks = []
    for issued_registry, issued_mode, token in tokens:
        for registry in owners:
            for mode in modes[registry]:
                same = registry == issued_registry and world.endpoints.netloc(mode, registry) == world.endpoints.netloc(
                    issued_mode, issued_registry
                )
                got = (_get_manifest(world, mode, registry, token), _start_upload(world, mode, registry, token))
                want = (200, 202) if same else (401, 401)
                if got != want:
                    leaks.append(
                        f"token for {issued_registry} ({issued_mode}) on {registry} ({mode}): {got}, want {want}"
                    )
    assert not leaks, "\n".join(leaks)


def _name(mode: str, registry: str) -> str:
    return f"{registry}/app" if mode == "path" else "app"


def test_another_organization_cannot_read_or_write_through_a_custom_domain(world):
    """Issue 15's attack: org B asks for a token whose `service` is org A's custom domain and whose
    scope names B's own registry, then presents it the way A's route delivers requests."""
    a_domain = CUSTOM_DOMAINS["priv"]
    world.owner.push_image("priv/bpriv/app", "v1")  # in A's registry: a repository named like B's
    service = f"{a_domain}:{world.endpoints.port}"
    as_gateway = {"Host": service, "X-Berth-Registry": "priv"}
    for headers in ({}, as_gateway):  # asked on the shared endpoint, and through A's route
        for scope, probe in (
            ("repository:bpriv/app:pull", ("GET", "/v2/bpriv/app/manifests/v1")),
            ("repository:evil/planted:pull,push", ("POST", "/v2/evil/planted/blobs/uploads/")),
        ):
            r = requests.get(
                f"{world.server.url}/auth/token",
                params={"service": service, "scope": scope},
                auth=("b", world.other_owner),
                headers=headers,
                timeout=20,
            )
            assert r.status_code == 200 and all(not a["actions"] for a in jwt_access(r.json()["token"])), r.text
            for presented in (as_gateway, {"Host": service}):
                got = requests.request(
                    probe[0],
                    world.server.url + probe[1],
                    timeout=20,
                    headers={**presented, "Authorization": f"Bearer {r.json()['token']}"},
                )
                assert got.status_code == 401, (scope, presented, got.status_code, got.text)
    catalog = world.owner.request("GET", "/v2/_catalog", params={"n": 1000}).json()["repositories"]
    assert not any("evil" in name for name in catalog)


def jwt_access(token: str) -> list[dict]:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})["access"]


def test_the_owner_logs_in_on_the_custom_domain_and_pushes_a_single_component_name(world):
    """`docker login images...; docker push images.../app:1` as the token flow runs it; another
    organization's owner gets nothing there."""
    client = world.endpoints
    digest = world.manifests["priv"][0]
    body = world.manifests["priv"][1]
    put = client.request(
        "custom",
        "PUT",
        "/v2/priv/app/manifests/from-custom",
        password=world.server.token,
        flow="token",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201, put.text
    got = client.request(
        "custom",
        "GET",
        "/v2/priv/app/manifests/from-custom",
        password=world.server.token,
        flow="token",
        headers={"Accept": OCI_MANIFEST},
    )
    assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
    for method, kw in (("GET", {}), ("PUT", {"data": body, "headers": {"Content-Type": OCI_MANIFEST}})):
        other = client.request(
            "custom", method, "/v2/priv/app/manifests/from-b", password=world.other_owner, flow="token", **kw
        )
        assert other.status_code == 401, other.text


def _wait_for_operation(world, operation_id: str, token: str) -> dict:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = requests.get(
            f"{world.server.url}/api/v1/operations/{operation_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )
        if r.status_code == 404 or r.json()["state"] in ("succeeded", "failed"):
            return r.json() if r.status_code == 200 else {}
        time.sleep(0.05)
    raise AssertionError(f"operation {operation_id} did not finish")


def test_no_token_outlives_its_registry_when_another_organization_takes_the_name_at_once(world):
    """A's owner deletes a registry and B creates one of the same name straight away (the same
    second, here, and on SQLite the same row id): A's registry tokens, refresh token and
    registry-scoped access token grant nothing in B's registry."""
    owner = {"Authorization": f"Bearer {world.server.token}"}
    api_a = f"{world.server.url}/api/v1/orgs/default"
    assert requests.post(f"{api_a}/registries", json={"name": "reuse"}, headers=owner, timeout=20).status_code == 202
    scoped = requests.post(
        f"{api_a}/tokens", json={"name": "reuse-push", "scope": "push", "registry": "reuse"}, headers=owner, timeout=20
    ).json()
    tokens = [
        (mode, world.endpoints.token(mode, "reuse", f"repository:{_name(mode, 'reuse')}:pull,push", secret))
        for mode in ("path", "host", "gateway")
        for secret in (world.server.token, scoped["token"])
    ]
    refresh = requests.get(
        f"{world.server.url}/auth/token",
        auth=("a", scoped["token"]),
        timeout=20,
        params={
            "service": world.endpoints.netloc("path", "reuse"),
            "scope": "repository:reuse/app:pull",
            "offline_token": "true",
        },
    ).json()["refresh_token"]
    assert _start_upload(world, "path", "reuse", tokens[0][1]) == 202

    deleted = requests.delete(f"{api_a}/registries/reuse", headers=owner, timeout=20)
    _wait_for_operation(world, deleted.json()["operation"]["id"], world.server.token)
    created = requests.post(
        f"{world.server.url}/api/v1/orgs/otherorg/registries",
        json={"name": "reuse"},
        headers={"Authorization": f"Bearer {world.other_owner}"},
        timeout=20,
    )
    assert created.status_code == 202, created.text
    b_token = requests.post(
        f"{world.server.url}/api/v1/orgs/otherorg/tokens",
        json={"name": "b", "scope": "push"},
        headers={"Authorization": f"Bearer {world.other_owner}"},
        timeout=20,
    )
    assert b_token.status_code == 201  # on SQLite it may take the deleted token's row id

    for mode, token in tokens:
        assert _start_upload(world, mode, "reuse", token) == 401, mode
        assert (
            world.endpoints.request(
                mode, "GET", "/v2/reuse/app/tags/list", flow="basic", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 401
        )
    assert (
        requests.get(f"{world.server.url}/v2/reuse/app/tags/list", auth=("a", scoped["token"]), timeout=20).status_code
        == 401
    )
    refreshed = requests.post(
        f"{world.server.url}/auth/token",
        timeout=20,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": world.endpoints.netloc("path", "reuse"),
            "scope": "repository:reuse/app:pull,push",
        },
    )
    assert refreshed.status_code == 401, refreshed.text


def test_a_token_for_one_repository_cannot_mount_another_repositorys_blob_without_from(world):
    """OCI 1.1 lets a registry mount without `from=`; with a registry token scoped to one
    repository that would hand over blobs of repositories it may not pull. It gets an ordinary
    upload session instead, and the blob stays unreadable through that repository."""
    secret = secrets.token_bytes(64)
    digest = world.owner.push_blob("priv/secret-only", secret)
    dev = requests.post(
        f"{world.server.url}/api/v1/orgs/default/tokens",
        json={"name": "mount-dev", "scope": "push"},
        headers={"Authorization": f"Bearer {world.server.token}"},
        timeout=20,
    ).json()["token"]
    token = world.endpoints.token("path", "priv", "repository:priv/mine:pull,push", dev)
    bearer = {"Authorization": f"Bearer {token}"}
    r = requests.post(
        f"{world.server.url}/v2/priv/mine/blobs/uploads/", params={"mount": digest}, headers=bearer, timeout=20
    )
    assert r.status_code == 202, r.text
    assert (
        requests.get(f"{world.server.url}/v2/priv/mine/blobs/{digest}", headers=bearer, timeout=20).status_code == 404
    )
    # Basic credentials of the same developer act with its role, which reads the whole registry.
    r = requests.post(
        f"{world.server.url}/v2/priv/mine2/blobs/uploads/", params={"mount": digest}, auth=("u", dev), timeout=20
    )
    assert r.status_code == 201, r.text
