"""Access tokens on a real SQLite database: lifetimes as clients write them, a token never
stronger than its creator, scoped to one of the organization's registries, visible to its maker
and the managers, revoked by them only."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth.subject import Subject
from app.auth.token_secrets import find_token
from app.db.models import AccessToken, Organization, Registry, utcnow
from app.services import tokens
from app.spec.errors import RegistryError


@pytest.fixture
def org(database):
    org = Organization.create(name="o")
    Registry.create(org=org, name="r")
    Registry.create(org=Organization.create(name="other"), name="theirs")
    return org


def _as(org, role, name=None, **fields):
    return Subject(name=name or role, roles={org.id: role}, **fields)


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, None),
        (90, 90),
        ("90s", 90),
        ("15m", 900),
        ("12h", 43200),
        ("30d", 30 * 86400),
        ("3650d", 3650 * 86400),
    ],
)
def test_lifetimes_as_clients_write_them(value, seconds):
    expected = None if seconds is None else dt.timedelta(seconds=seconds)
    assert tokens.parse_duration(value) == expected


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "", "10", "1w", "١d", "3651d", "1000000000000d", " 1d", "1d\n"])
def test_other_lifetimes_are_invalid(value):
    with pytest.raises(RegistryError) as raised:
        tokens.parse_duration(value)
    assert raised.value.field == "expires_in"


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=16), st.integers(), st.none()))
def test_any_lifetime_is_one_to_ten_years_or_invalid(value):
    try:
        lifetime = tokens.parse_duration(value)
    except RegistryError as error:
        assert error.status == 400
    else:
        assert lifetime is None or dt.timedelta(seconds=1) <= lifetime <= tokens.MAX_LIFETIME


def test_a_token_works_once_created_and_is_no_stronger_than_its_creator(org):
    token, secret = tokens.create_token(org, _as(org, "developer"), "ci", scope="push", expires_in="1h")
    assert find_token(secret).id == token.id and token.role == "developer" and token.created_by == "developer"
    assert utcnow() + dt.timedelta(minutes=59) < token.expires_at <= utcnow() + dt.timedelta(hours=1)
    assert AccessToken.get_by_id(token.id).token_hash != secret
    with pytest.raises(RegistryError, match="its creator holds 'developer'"):
        tokens.create_token(org, _as(org, "developer"), "x", role="admin")
    with pytest.raises(RegistryError, match="DENIED"):
        tokens.create_token(org, Subject(name="stranger"), "x")


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"name": "ci\n"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"role": "god"}, "role"),
        ({"scope": "admin"}, "scope"),
        ({"registry": "Bad Name"}, "registry"),
    ],
)
def test_bad_requests_are_invalid_by_field(org, fields, field):
    fields = {"name": "ci", **fields}
    with pytest.raises(RegistryError) as raised:
        tokens.create_token(org, _as(org, "owner"), fields.pop("name"), **fields)
    assert (raised.value.code, raised.value.field) == ("INVALID", field)


def test_a_token_is_scoped_only_to_a_registry_of_its_organization(org):
    token, _ = tokens.create_token(org, _as(org, "owner"), "pull", registry="r")
    assert token.registry.name == "r" and token.role == "reader"
    with pytest.raises(RegistryError, match="NOT_FOUND"):
        tokens.create_token(org, _as(org, "owner"), "pull", registry="theirs")
    scoped = _as(org, "owner", registry_id=token.registry_id)
    with pytest.raises(RegistryError, match="only create tokens for that registry"):
        tokens.create_token(org, scoped, "org-wide")


def test_managers_see_every_token_and_others_their_own(org):
    tokens.create_token(org, _as(org, "developer", "dev"), "mine")
    tokens.create_token(org, _as(org, "admin", "adm"), "theirs")
    assert [t.name for t in tokens.list_tokens(org, _as(org, "developer", "dev"))] == ["mine"]
    assert [t.name for t in tokens.list_tokens(org, _as(org, "admin", "someone"))] == ["mine", "theirs"]


def test_revoking_is_for_its_maker_or_a_manager_and_may_be_repeated(org):
    token, secret = tokens.create_token(org, _as(org, "developer", "dev"), "mine")
    with pytest.raises(RegistryError, match="NOT_FOUND"):
        tokens.revoke_token(org, _as(org, "developer", "other-dev"), token.id)
    assert tokens.revoke_token(org, _as(org, "developer", "dev"), token.id).revoked_at is not None
    assert find_token(secret) is None
    assert tokens.revoke_token(org, _as(org, "admin"), token.id).revoked_at is not None


def test_an_owner_token_is_revoked_only_by_an_owner_and_never_the_last(org):
    first, _ = tokens.create_token(org, _as(org, "owner"), "first", role="owner")
    with pytest.raises(RegistryError, match="only an owner"):
        tokens.revoke_token(org, _as(org, "admin"), first.id)
    with pytest.raises(RegistryError, match="last owner"):
        tokens.revoke_token(org, _as(org, "owner"), first.id)
    tokens.create_token(org, _as(org, "owner"), "second", role="owner")
    tokens.revoke_token(org, _as(org, "owner"), first.id)


@pytest.mark.parametrize(
    "raw, ok", [("12", True), ("0", True), ("١", False), ("0_1", False), ("1" * 19, False), ("", False)]
)
def test_token_ids_in_urls(raw, ok):
    if ok:
        assert tokens.parse_id(raw) == int(raw)
    else:
        with pytest.raises(RegistryError, match="NOT_FOUND"):
            tokens.parse_id(raw)
