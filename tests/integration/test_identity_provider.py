"""Platform identity: IdP JWTs verified against a real JWKS endpoint, claims and memberships
mapped to roles, and every kind of bad token refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from tests.support.idp import IdentityProvider
from tests.support.registry_client import RegistryClient, sha256
from tests.support.server import Server


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def env(idp, tmp_path_factory):
    # A cool-down of 1 s (the default is 10 s) lets a test see a rotated key picked up without a long wait.
    server = Server(
        tmp_path_factory.mktemp("idp") / "data",
        token="berth_owner_" + secrets.token_hex(16),
        env={**idp.env(), "BERTH_OIDC_JWKS_COOLDOWN": "1"},
    ).start()
    RegistryClient(server.url, server.session()).push_image("default/app", "v1")
    yield server
    server.stop()


def api(env, jwt_or_token: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(
        method,
        f"{env.url}/api/v1/orgs/default{path}",
        timeout=20,
        headers={"Authorization": f"Bearer {jwt_or_token}"},
        **kw,
    )


def pull(env, password: str) -> int:
    return requests.get(f"{env.url}/v2/default/app/manifests/v1", auth=("user", password), timeout=20).status_code


def push(env, password: str) -> int:
    data = secrets.token_bytes(8)
    return requests.post(
        f"{env.url}/v2/default/app/blobs/uploads/",
        params={"digest": sha256(data)},
        data=data,
        auth=("user", password),
        timeout=20,
    ).status_code


def test_claimed_role_works_on_both_planes(env, idp):
    alice = idp.token("alice", orgs={"default": "developer"})
    assert api(env, alice, "GET", "/registries").status_code == 200
    assert pull(env, alice) == 200 and push(env, alice) == 201
    assert api(env, alice, "PUT", "/members/zed", json={"role": "reader"}).status_code == 403  # developers don't
    # Through the token service, as docker login does with username + IdP token.
    r = requests.get(
        f"{env.url}/auth/token",
        auth=("alice", alice),
        timeout=20,
        params={"service": env.host, "scope": "repository:default/app:pull,push"},
    )
    assert r.status_code == 200
    claims = json.loads(base64.urlsafe_b64decode(r.json()["token"].split(".")[1] + "=="))
    assert claims["sub"] == "user:alice" and claims["access"][0]["actions"] == ["pull", "push"]
    # Tokens made by an IdP user are theirs, capped at their role.
    r = api(env, alice, "POST", "/tokens", json={"name": "alice ci", "scope": "push"})
    assert r.status_code == 201 and r.json()["created_by"] == "user:alice"
    assert api(env, alice, "POST", "/tokens", json={"name": "too much", "role": "admin"}).status_code == 403


def test_es256_tokens(env, idp):
    assert pull(env, idp.token("eve", kid="ec-1", orgs={"default": "reader"})) == 200


def test_no_role_means_no_access(env, idp):
    bob = idp.token("bob")
    assert api(env, bob, "GET", "/registries").status_code == 404  # not a member: the org is not confirmed to exist
    assert pull(env, bob) == 403


def test_stored_membership_and_claims_combine_to_the_stronger(env, idp):
    owner = {"Authorization": f"Bearer {env.token}"}
    assert (
        requests.put(
            f"{env.url}/api/v1/orgs/default/members/carol", json={"role": "admin"}, headers=owner, timeout=20
        ).status_code
        == 201
    )
    carol = idp.token("carol", orgs={"default": "reader"})
    assert push(env, carol) == 201  # admin from the membership beats reader from the claim
    assert api(env, carol, "PUT", "/members/dan", json={"role": "reader"}).status_code == 201
    dan = idp.token("dan")
    assert pull(env, dan) == 200 and push(env, dan) == 403  # a membership alone suffices
    dan_dev = idp.token("dan", orgs={"default": "developer"})
    assert push(env, dan_dev) == 201  # and a claim can raise it
    # A claim for an organization that does not exist grants nothing anywhere.
    assert pull(env, idp.token("mallory", orgs={"elsewhere": "owner"})) == 403


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_bad_identity_tokens_are_refused(env, idp):
    now = int(time.time())
    good = idp.token("alice", orgs={"default": "owner"})
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    public_pem = (
        idp.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_input = _b64({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}) + "." + payload
    hs_signature = (
        base64.urlsafe_b64encode(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    )
    bad = {
        "wrong issuer": idp.token("alice", orgs={"default": "owner"}, iss="https://evil.example"),
        "wrong audience": idp.token("alice", orgs={"default": "owner"}, aud="someone-else"),
        "expired": idp.token("alice", orgs={"default": "owner"}, exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not yet valid": idp.token("alice", orgs={"default": "owner"}, nbf=now + 3600),
        "alg none": _b64({"alg": "none", "typ": "JWT"}) + "." + payload + ".",
        "HS256 keyed with the public key": hs_input + "." + hs_signature,
        "tampered": header + "." + _b64({**claims, "sub": "someone-else"}) + "." + signature,
        "unknown kid": good.replace(header, _b64({"alg": "RS256", "kid": "nope", "typ": "JWT"})),
        "no kid": jwt.encode(claims, idp.keys["rsa-1"], algorithm="RS256"),
        # Signed for real, each with its own key, but naming a key of the other type.
        "ES256 naming an RSA key": jwt.encode(claims, idp.keys["ec-1"], algorithm="ES256", headers={"kid": "rsa-1"}),
        "RS256 naming an EC key": jwt.encode(claims, idp.keys["rsa-1"], algorithm="RS256", headers={"kid": "ec-1"}),
    }
    assert pull(env, good) == 200
    for name, token in bad.items():
        assert pull(env, token) == 401, name
        r = api(env, token, "GET", "/registries")
        assert r.status_code == 401, name
        assert r.headers["Content-Type"] == "application/problem+json"


def test_rotated_idp_key_is_fetched_on_unknown_kid(env, idp):
    assert pull(env, idp.token("rot", orgs={"default": "reader"})) == 200  # keys cached now
    before = idp.fetches
    idp.add_key("ec-2")
    # Refused while the cool-down of the last fetch lasts, then fetched for: well before the
    # default 10 s cool-down would have passed, so BERTH_OIDC_JWKS_COOLDOWN is what held.
    _wait_for(lambda: pull(env, idp.token("rot", kid="ec-2", orgs={"default": "reader"})) == 200, seconds=5)
    assert idp.fetches == before + 1
    assert pull(env, idp.token("rot", kid="ec-2", orgs={"default": "reader"})) == 200
    assert idp.fetches == before + 1  # cached


def test_a_hanging_jwks_endpoint_times_out(tmp_path):
    provider = IdentityProvider()
    provider.hang = True
    server = Server(tmp_path / "data", token="berth_owner_" + secrets.token_hex(16), env=provider.env()).start()
    try:
        token = provider.token("x", orgs={"default": "owner"})
        # The fetch gives up after the IdP timeout (5 s): the caller gets a 401, not a hung request.
        r = requests.get(f"{server.url}/v2/", auth=("x", token), timeout=25)
        assert r.status_code == 401
        assert "cannot be fetched" in r.json()["errors"][0]["message"]
        # Access tokens keep working meanwhile.
        assert requests.get(f"{server.url}/v2/", auth=("x", server.token), timeout=10).status_code == 200
    finally:
        server.stop()
        provider.stop()


# Far longer than these requests take, far shorter than the stall (no answer in 20 s).
PROMPT = 5


def _wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _set_off_a_fetch(pool, server, provider):
    """Send made-up keys one at a time until one sets off a fetch (the cool-down of the last one
    has passed): the request that did, still in flight while the provider hangs."""
    before = provider.fetches
    deadline = time.monotonic() + 20
    while True:
        token = provider.token("mallory", header_kid=f"probe-{secrets.token_hex(4)}")
        request = pool.submit(requests.get, f"{server.url}/v2/", auth=("m", token), timeout=60)
        while not request.done() and provider.fetches == before:
            time.sleep(0.02)
        if provider.fetches > before:
            return request
        assert request.result().status_code == 401  # unknown, and no fetch during the cool-down
        assert time.monotonic() < deadline, "no fetch after 20 s"
        time.sleep(0.1)


def test_a_hanging_identity_provider_holds_up_only_tokens_naming_unknown_keys(tmp_path):
    provider = IdentityProvider()
    # A cool-down of 4 s (the default is 10 s): longer than the flood below takes to be answered.
    server = Server(
        tmp_path / "data",
        token="berth_owner_" + secrets.token_hex(16),
        env={**provider.env(), "BERTH_OIDC_JWKS_COOLDOWN": "4"},
    ).start()
    try:
        alice = {"Authorization": f"Bearer {provider.token('alice', orgs={'default': 'reader'})}"}
        registries = f"{server.url}/api/v1/orgs/default/registries"
        assert requests.get(registries, headers=alice, timeout=20).status_code == 200  # its key is cached now
        provider.hang = True
        before = provider.fetches
        made_up = [provider.token("mallory", header_kid=f"made-up-{n}") for n in range(24)]
        with ThreadPoolExecutor(len(made_up) + 1) as pool:
            probe = _set_off_a_fetch(pool, server, provider)  # it hangs
            flood = [pool.submit(requests.get, f"{server.url}/v2/", auth=("m", token), timeout=60) for token in made_up]
            assert requests.get(registries, headers=alice, timeout=PROMPT).status_code == 200
            assert (
                requests.get(
                    f"{server.url}/auth/token",
                    auth=("ci", server.token),
                    timeout=PROMPT,
                    params={"service": server.host},
                ).status_code
                == 200
            )
            assert requests.get(f"{server.url}/healthz", timeout=PROMPT).status_code == 200
            refused = [f.result() for f in flood]
        assert [r.status_code for r in refused] == [401] * len(made_up)
        assert probe.result().status_code == 401
        # One fetch for all of them, though it never answered: the cool-down started with it.
        assert provider.fetches == before + 1
    finally:
        server.stop()
        provider.stop()
