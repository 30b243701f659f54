"""An access token works until the moment it expires and not after, however it is presented:
as a password, or behind a registry token issued for it. The clock is moved by hand
(tests/support/clock.py), so the boundary is checked exactly, without waiting for it."""

from __future__ import annotations

import falcon.testing
import pytest

from app.auth.identity import Identity
from app.auth.keys import KeyRing
from app.auth.registry_tokens import RegistryTokens
from app.auth.subject import Subject
from app.auth.token_secrets import find_token
from app.db.models import Organization
from app.db.setup import open_database
from app.services.tokens import create_token
from app.spec.errors import RegistryError
from tests.support.clock import FakeClock

SERVICE = "registry.example:5000"


def _bearer(token: str):
    return falcon.testing.create_req(
        host="registry.example", port=5000, path="/v2/", headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
def world(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    org = Organization.create(name="o")
    clock = FakeClock()
    owner = Subject(name="owner", roles={org.id: "owner"})
    _, secret = create_token(org, owner, "ci", scope="pull", expires_in="60s", clock=clock)
    identity = Identity(RegistryTokens(KeyRing(tmp_path / "keys").load(), clock), clock=clock)
    yield clock, secret, identity
    db.close()


def test_a_token_works_until_it_expires(world):
    clock, secret, identity = world
    clock.advance(59.9)
    assert find_token(secret, clock) is not None
    assert identity.from_password(secret).name.startswith("token:")
    clock.advance(0.1)  # its expiry: from now on it is not live
    assert find_token(secret, clock) is None
    with pytest.raises(RegistryError) as refused:
        identity.from_password(secret)
    assert refused.value.code == "UNAUTHORIZED"


def test_a_registry_token_stops_working_with_the_access_token_it_was_issued_for(world):
    clock, secret, identity = world
    subject = identity.from_password(secret)
    registry_token, lifetime = identity.registry_tokens.issue(subject.name, SERVICE, [], subject.credential)
    assert lifetime > 60  # outlives the access token, which still decides
    clock.advance(59)
    assert identity.data_plane(_bearer(registry_token)).token_id == subject.token_id
    clock.advance(1)
    with pytest.raises(RegistryError) as refused:
        identity.data_plane(_bearer(registry_token))
    assert "revoked or expired" in refused.value.message
