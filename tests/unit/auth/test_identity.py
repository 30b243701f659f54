"""Turning a request's credentials into a subject, on a real SQLite database with a real keyring:
no credentials are anonymous, bad ones are UNAUTHORIZED (never a silent anonymous), a registry
token carries its grants and dies with the access token it was issued for, and failures count
against the client's address."""

from __future__ import annotations

import base64

import falcon.testing
import pytest

from app.auth import token_secrets
from app.auth.identity import Identity, challenge
from app.auth.keys import KeyRing
from app.auth.registry_tokens import RegistryTokens
from app.auth.subject import ANONYMOUS
from app.auth.throttle import LoginThrottle
from app.db.models import AccessToken, Organization, Registry, utcnow
from app.spec.errors import RegistryError

HOST = "registry.example:5000"


@pytest.fixture
def world(database, tmp_path):
    org = Organization.create(name="o")
    registry = Registry.create(org=org, name="r")
    secret = token_secrets.generate_token()
    token = AccessToken.create(org=org, name="t", role="developer", token_hash=token_secrets.hash_token(secret))
    tokens = RegistryTokens(KeyRing(tmp_path / "keys").load())
    return Identity(tokens, throttle=LoginThrottle("3/minute")), secret, token, registry


def _req(authorization: str | None = None, remote_addr: str = "10.0.0.1"):
    headers = {"Host": HOST, **({"Authorization": authorization} if authorization else {})}
    return falcon.testing.create_req(path="/v2/", headers=headers, remote_addr=remote_addr)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_no_credentials_and_docker_s_empty_basic_are_anonymous(world):
    identity, *_ = world
    assert identity.data_plane(_req()) is ANONYMOUS
    assert identity.data_plane(_req(_basic("", ""))) is ANONYMOUS
    assert identity.management(_req()) is ANONYMOUS


def test_an_access_token_works_as_basic_password_and_as_bearer(world):
    identity, secret, token, _ = world
    for header in (_basic("anyone", secret), f"Bearer {secret}"):
        assert identity.data_plane(_req(header)).token_id == token.id
    assert identity.management(_req(f"Bearer {secret}")).roles == {token.org_id: "developer"}


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!",
        "Digest x",
        "Bearer ",
        "Bearer berth_wrong",
        "Bearer a.b.c",
    ],
)
def test_bad_credentials_are_unauthorized_not_anonymous(world, header):
    identity, *_ = world
    with pytest.raises(RegistryError) as raised:
        identity.data_plane(_req(header))
    assert raised.value.code == "UNAUTHORIZED"


def test_the_management_plane_takes_only_bearer(world):
    identity, secret, *_ = world
    with pytest.raises(RegistryError, match="Bearer"):
        identity.management(_req(_basic("u", secret)))


def test_a_registry_token_carries_its_grants_until_its_access_token_is_revoked(world):
    identity, _, token, registry = world
    access = [
        {
            "type": "repository",
            "name": "r/app",
            "registry": registry.uid,
            "repository": "app",
            "actions": ["pull", "push", 7],
        },
        {"type": "repository", "name": "nowhere", "actions": ["pull"]},
    ]
    jwt_, _ = identity.registry_tokens.issue("token:1", HOST, access, (token.id, token_secrets.fingerprint(token)))
    subject = identity.data_plane(_req(f"Bearer {jwt_}"))
    assert subject.grants == {(registry.uid, "app"): frozenset({"pull", "push"})}
    AccessToken.update(revoked_at=utcnow()).execute()
    with pytest.raises(RegistryError, match="revoked or expired"):
        identity.data_plane(_req(f"Bearer {jwt_}"))


def test_a_registry_token_for_another_host_is_refused(world):
    identity, *_ = world
    jwt_, _ = identity.registry_tokens.issue("anonymous", "elsewhere.example", [], None)
    with pytest.raises(RegistryError, match="invalid or expired registry token"):
        identity.data_plane(_req(f"Bearer {jwt_}"))


def test_failures_are_counted_per_client_address(world):
    identity, secret, *_ = world
    for _ in range(3):
        with pytest.raises(RegistryError, match="UNAUTHORIZED"):
            identity.data_plane(_req("Bearer berth_wrong"))
    with pytest.raises(RegistryError, match="TOOMANYREQUESTS"):
        identity.data_plane(_req(f"Bearer {secret}"))  # even good credentials, from that address
    assert identity.data_plane(_req(f"Bearer {secret}", remote_addr="10.0.0.2")).token_id is not None


def test_the_challenge_names_the_token_endpoint_of_the_addressed_host():
    req = _req()
    assert challenge(req) == f'Bearer realm="http://{HOST}/auth/token",service="{HOST}"'
    assert challenge(req, "repository:a:pull").endswith(',scope="repository:a:pull"')
