"""The authorization gate over real Registry rows: roles judge organization members, a registry
token's grants hold in exactly the registry (by uid) and repository they name, anonymous callers
may only pull from public registries; refusals are UNAUTHORIZED for anonymous and DENIED (401
insufficient_scope for a registry token) otherwise."""

from __future__ import annotations

import pytest

from app.auth import gate, roles
from app.auth.subject import ANONYMOUS, Subject
from app.db.models import Organization, Registry
from app.spec.errors import RegistryError


@pytest.fixture
def registries(database):
    org, other = Organization.create(name="o"), Organization.create(name="p")
    return (
        Registry.create(org=org, name="private"),
        Registry.create(org=org, name="public", visibility="public"),
        Registry.create(org=other, name="elsewhere"),
    )


def test_roles_are_judged_in_the_registry_s_organization(registries):
    private, public, elsewhere = registries
    reader = Subject(name="r", roles={private.org_id: "reader"})
    assert gate.is_allowed(reader, roles.PULL, private) and not gate.is_allowed(reader, roles.PUSH, private)
    assert not gate.is_allowed(reader, roles.PULL, elsewhere)
    assert gate.is_allowed(reader, roles.PULL, public)


def test_anonymous_may_only_pull_from_public_registries(registries):
    private, public, _ = registries
    assert gate.is_allowed(ANONYMOUS, roles.PULL, public)
    assert not gate.is_allowed(ANONYMOUS, roles.PUSH, public) and not gate.is_allowed(ANONYMOUS, roles.BROWSE, public)
    assert not gate.is_allowed(ANONYMOUS, roles.PULL, private)
    with pytest.raises(RegistryError) as raised:
        gate.authorize(ANONYMOUS, roles.PULL, private)
    assert raised.value.code == "UNAUTHORIZED"


def test_a_registry_token_grants_exactly_its_registry_and_repository(registries):
    private, public, _ = registries
    s = Subject(name="rt", roles={private.org_id: "owner"}, grants={(private.uid, "app"): frozenset({"pull"})})
    assert gate.is_allowed(s, roles.PULL, private, "app")
    assert not gate.is_allowed(s, roles.PUSH, private, "app")
    assert not gate.is_allowed(s, roles.PULL, private, "other")
    assert not gate.is_allowed(s, roles.PULL, public, "app")  # not even a public one: grants only
    assert not gate.may_pull_every_repository(s, private)
    star = Subject(name="rt", grants={(private.uid, "app"): frozenset({"*"})})
    assert gate.is_allowed(star, roles.DELETE, private, "app")
    with pytest.raises(RegistryError) as raised:
        gate.authorize(s, roles.PUSH, private, "app")
    assert (raised.value.code, raised.value.status, raised.value.challenge_error) == (
        "DENIED",
        401,
        "insufficient_scope",
    )


def test_a_catalog_grant_browses_only_with_a_role_that_may(registries):
    private, _, _ = registries
    grants = {gate.CATALOG: frozenset({"*"})}
    assert gate.is_allowed(Subject(name="c", roles={private.org_id: "reader"}, grants=grants), roles.BROWSE, private)
    assert not gate.is_allowed(Subject(name="c", grants=grants), roles.BROWSE, private)
    assert not gate.is_allowed(Subject(name="c", roles={private.org_id: "reader"}, grants={}), roles.BROWSE, private)


def test_a_denied_member_gets_denied_403(registries):
    private, _, _ = registries
    with pytest.raises(RegistryError) as raised:
        gate.authorize(Subject(name="r", roles={private.org_id: "reader"}), roles.PUSH, private)
    assert (raised.value.code, raised.value.status) == ("DENIED", 403)


def test_organization_actions_take_an_unscoped_member(registries):
    org_id = registries[0].org_id
    assert gate.is_allowed_in_org(Subject(name="a", roles={org_id: "admin"}), roles.MANAGE_MEMBERS, org_id)
    assert not gate.is_allowed_in_org(
        Subject(name="a", roles={org_id: "admin"}, registry_id=1), roles.MANAGE_MEMBERS, org_id
    )
    assert not gate.is_allowed_in_org(
        Subject(name="a", roles={org_id: "admin"}, grants={}), roles.MANAGE_MEMBERS, org_id
    )
    with pytest.raises(RegistryError, match="UNAUTHORIZED"):
        gate.authorize_org(ANONYMOUS, roles.BROWSE, org_id)
    with pytest.raises(RegistryError, match="DENIED"):
        gate.authorize_org(Subject(name="d", roles={org_id: "developer"}), roles.MANAGE_MEMBERS, org_id)
