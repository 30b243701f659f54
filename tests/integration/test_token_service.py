"""The Docker token flow against the real server: challenges, downscoped grants, the OAuth2
form, refresh tokens, revocation, and tokens that must be refused."""

from __future__ import annotations

import base64
import json
import secrets
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from tests.support.registry_client import RegistryClient, sha256


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from tests.support.server import Server

    server = Server(tmp_path_factory.mktemp("tokensvc") / "data", token="berth_owner_" + secrets.token_hex(16)).start()
    api = f"{server.url}/api/v1/orgs/default"
    owner = {"Authorization": f"Bearer {server.token}"}
    assert (
        requests.post(
            f"{api}/registries", json={"name": "pub", "visibility": "public"}, headers=owner, timeout=10
        ).status_code
        == 202
    )

    def token(**body) -> tuple[int, str]:
        body.setdefault("name", "t" + secrets.token_hex(3))
        r = requests.post(f"{api}/tokens", json=body, headers=owner, timeout=10)
        assert r.status_code == 201, r.text
        return r.json()["id"], r.json()["token"]

    c = RegistryClient(server.url, server.session())
    c.push_image("default/app", "v1")
    c.push_image("pub/app", "v1")
    server.make_token = token
    server.api, server.owner_headers = api, owner
    yield server
    server.stop()


def fetch(server, scopes: list[str], auth=None, **params) -> requests.Response:
    return requests.get(
        f"{server.url}/auth/token", params={"service": server.host, "scope": scopes, **params}, auth=auth, timeout=10
    )


def bearer(server, token: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(
        method,
        server.url + path,
        headers={"Authorization": f"Bearer {token}", **kw.pop("headers", {})},
        timeout=10,
        **kw,
    )


def access_of(token: str) -> dict:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {(a["type"], a["name"]): a["actions"] for a in claims["access"]}


def test_challenge_names_realm_service_and_scope(env):
    r = requests.get(f"{env.url}/v2/default/app/manifests/v1", timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{env.host}/auth/token",service="{env.host}",scope="repository:default/app:pull"'
    )
    r = requests.get(f"{env.url}/v2/_catalog", timeout=10)
    assert r.headers["WWW-Authenticate"].endswith('scope="registry:catalog:*"')


def test_owner_gets_what_it_asks_for_and_uses_it(env):
    r = fetch(env, ["repository:default/app:pull,push", "registry:catalog:*"], auth=("x", env.token))
    assert r.status_code == 200
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300 and body["issued_at"]
    assert access_of(body["token"]) == {("repository", "default/app"): ["pull", "push"], ("registry", "catalog"): ["*"]}
    t = body["token"]
    assert bearer(env, t, "GET", "/v2/").status_code == 200
    assert bearer(env, t, "GET", "/v2/default/app/manifests/v1").status_code == 200
    data = b"pushed with a registry token"
    assert (
        bearer(env, t, "POST", "/v2/default/app/blobs/uploads/", params={"digest": sha256(data)}, data=data).status_code
        == 201
    )
    assert "default/app" in bearer(env, t, "GET", "/v2/_catalog").json()["repositories"]
    # The grant is for one repository: another one needs a new token (insufficient_scope).
    r = bearer(env, t, "GET", "/v2/default/other/tags/list")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "DENIED"
    assert r.headers["WWW-Authenticate"].endswith('scope="repository:default/other:pull",error="insufficient_scope"')


def test_reader_is_downscoped_not_refused(env):
    _, reader = env.make_token(scope="pull")
    r = fetch(env, ["repository:default/app:pull,push,delete"], auth=("x", reader))
    assert r.status_code == 200
    t = r.json()["token"]
    assert access_of(t) == {("repository", "default/app"): ["pull"]}
    assert bearer(env, t, "GET", "/v2/default/app/manifests/v1").status_code == 200
    r = bearer(env, t, "DELETE", "/v2/default/app/manifests/v1")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "DENIED"
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    # Asking again gets the same downscoped token: the reader may not delete, whatever it asks.
    again = fetch(env, ["repository:default/app:delete"], auth=("x", reader)).json()["token"]
    assert access_of(again) == {("repository", "default/app"): []}


def test_anonymous_tokens_cover_public_pulls_only(env):
    r = fetch(env, ["repository:pub/app:pull,push", "repository:default/app:pull", "registry:catalog:*"])
    assert r.status_code == 200
    t = r.json()["token"]
    assert access_of(t) == {
        ("repository", "pub/app"): ["pull"],
        ("repository", "default/app"): [],
        ("registry", "catalog"): [],
    }
    assert bearer(env, t, "GET", "/v2/pub/app/manifests/v1").status_code == 200
    r = bearer(env, t, "GET", "/v2/default/app/manifests/v1")
    assert r.status_code == 401 and 'scope="repository:default/app:pull"' in r.headers["WWW-Authenticate"]
    assert bearer(env, t, "GET", "/v2/_catalog").status_code == 401
    assert bearer(env, t, "GET", "/v2/").status_code == 200  # a valid token, if an anonymous one


def test_bad_credentials_at_the_token_endpoint(env):
    for auth in (("x", "berth_wrong"), ("x", "")):
        r = fetch(env, ["repository:default/app:pull"], auth=auth)
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = requests.get(f"{env.url}/auth/token", headers={"Authorization": "Basic !!!"}, timeout=10)
    assert r.status_code == 401


def test_oauth2_password_and_refresh_grants(env):
    token_id, secret = env.make_token(scope="push")
    form = {
        "grant_type": "password",
        "username": "ci",
        "password": secret,
        "service": env.host,
        "scope": "repository:default/app:pull,push",
        "client_id": "podman",
        "access_type": "offline",
    }
    r = requests.post(f"{env.url}/auth/token", data=form, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert access_of(body["access_token"]) == {("repository", "default/app"): ["pull", "push"]}
    refresh = body["refresh_token"]
    r = requests.post(
        f"{env.url}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": env.host,
            "scope": "repository:default/app:pull",
            "client_id": "podman",
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    assert bearer(env, access, "GET", "/v2/default/app/manifests/v1").status_code == 200

    # Revoking the access token kills its refresh token and the registry tokens already issued.
    assert requests.delete(f"{env.api}/tokens/{token_id}", headers=env.owner_headers, timeout=10).status_code == 204
    assert bearer(env, access, "GET", "/v2/default/app/manifests/v1").status_code == 401
    r = requests.post(
        f"{env.url}/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "service": env.host, "client_id": "podman"},
        timeout=10,
    )
    assert r.status_code == 401
    r = requests.post(f"{env.url}/auth/token", data={**form, "password": "berth_nope"}, timeout=10)
    assert r.status_code == 401
    r = requests.post(f"{env.url}/auth/token", data={"grant_type": "client_credentials"}, timeout=10)
    assert r.status_code == 400


def test_docker_style_offline_token(env):
    r = fetch(env, ["repository:default/app:pull"], auth=("x", env.token), offline_token="true", client_id="docker")
    assert r.status_code == 200 and r.json()["refresh_token"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """The classic algorithm-confusion forgery (pyjwt itself refuses to make one)."""
    import hashlib
    import hmac

    signing_input = _b64({"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + _b64(claims)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _own_key(env):
    path = next((env.data_dir / "token-keys").glob("*.pem"))
    return serialization.load_pem_private_key(path.read_bytes(), password=None), path.stem


def test_forged_and_misused_tokens_are_refused(env):
    good = fetch(env, ["repository:default/app:pull"], auth=("x", env.token)).json()["token"]
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    key, kid = _own_key(env)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    forged = {
        "tampered payload": ".".join(
            [
                header,
                _b64(
                    {
                        **claims,
                        "access": [
                            {"type": "repository", "name": "default/app", "actions": ["pull", "push", "delete"]}
                        ],
                    }
                ),
                signature,
            ]
        ),
        "alg none": ".".join([_b64({"alg": "none", "kid": kid, "typ": "JWT"}), payload, ""]),
        "HS256 keyed with the public key": _hs256(claims, public_pem, kid),
        "expired": jwt.encode(
            {**claims, "iat": now - 1000, "nbf": now - 1000, "exp": now - 600},
            key,
            algorithm="ES256",
            headers={"kid": kid},
        ),
        "wrong audience": jwt.encode(
            {**claims, "aud": "other.example:443"}, key, algorithm="ES256", headers={"kid": kid}
        ),
        "wrong issuer": jwt.encode({**claims, "iss": "someone-else"}, key, algorithm="ES256", headers={"kid": kid}),
        "unknown kid": jwt.encode(claims, key, algorithm="ES256", headers={"kid": "nope"}),
        "garbage": "a.b.c",
    }
    assert bearer(env, good, "GET", "/v2/default/app/manifests/v1").status_code == 200
    for name, token in forged.items():
        r = bearer(env, token, "GET", "/v2/default/app/manifests/v1")
        assert r.status_code == 401, name
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED", name


def test_jwks_publishes_the_verifying_key(env):
    token = fetch(env, ["repository:default/app:pull"], auth=("x", env.token)).json()["token"]
    jwks = requests.get(f"{env.url}/auth/jwks.json", timeout=10).json()
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    assert "d" not in jwk  # public half only
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=env.host, issuer="berth-token-service")
    assert claims["sub"] == "token:1"


def test_signing_key_rotation(tmp_path):
    import subprocess
    import sys

    from tests.support.server import ROOT, Server

    def berth(*args):
        r = subprocess.run(
            [sys.executable, "-m", "app.cli", *args, "--data-dir", str(tmp_path / "data")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    server = Server(tmp_path / "data", token="berth_rotation_owner_0123456789").start()
    try:
        old = fetch(server, ["repository:default/app:pull"], auth=("x", server.token)).json()["token"]
        old_kid = jwt.get_unverified_header(old)["kid"]
        assert berth("keys", "list").strip() == f"{old_kid}\tsigning"
        berth("keys", "rotate")
        server.stop()
        server.start()
        new = fetch(server, ["repository:default/app:pull"], auth=("x", server.token)).json()["token"]
        new_kid = jwt.get_unverified_header(new)["kid"]
        assert new_kid != old_kid
        assert berth("keys", "list").splitlines() == [f"{old_kid}\tverify-only", f"{new_kid}\tsigning"]
        assert {k["kid"] for k in requests.get(f"{server.url}/auth/jwks.json", timeout=10).json()["keys"]} == {
            old_kid,
            new_kid,
        }
        # Tokens signed with the old key keep working until it is pruned.
        assert bearer(server, old, "GET", "/v2/").status_code == 200
        assert bearer(server, new, "GET", "/v2/").status_code == 200
        berth("keys", "prune")
        server.stop()
        server.start()
        assert bearer(server, old, "GET", "/v2/").status_code == 401
        assert bearer(server, new, "GET", "/v2/").status_code == 200
    finally:
        server.stop()
