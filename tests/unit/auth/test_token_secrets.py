"""Access-token secrets on a real SQLite database: a secret finds its live token and nothing
else, a revoked or expired one finds nothing, the fingerprint names one token's secret, and
Basic credentials are parsed without ever raising."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth import token_secrets
from app.db.models import AccessToken, Organization, utcnow


@pytest.fixture
def org(database):
    return Organization.create(name="o")


def _token(org, secret: str, **fields) -> AccessToken:
    return AccessToken.create(org=org, name="t", role="reader", token_hash=token_secrets.hash_token(secret), **fields)


def test_a_new_secret_is_prefixed_and_unguessable():
    a, b = token_secrets.generate_token(), token_secrets.generate_token()
    assert a.startswith("berth_") and a != b and len(a) >= len("berth_") + 43


def test_a_secret_finds_its_live_token_and_nothing_else(org):
    secret = token_secrets.generate_token()
    token = _token(org, secret)
    assert token_secrets.find_token(secret).id == token.id
    assert token_secrets.find_token(secret + "x") is None
    assert token_secrets.find_token("") is None
    assert token_secrets.find_token("x" * 5000) is None


def test_a_revoked_or_expired_token_is_not_found(org):
    past, future = utcnow() - dt.timedelta(seconds=1), utcnow() + dt.timedelta(hours=1)
    revoked, expired, expiring = "berth_r", "berth_e", "berth_f"
    _token(org, revoked, revoked_at=past)
    _token(org, expired, expires_at=past)
    _token(org, expiring, expires_at=future)
    assert token_secrets.find_token(revoked) is None and token_secrets.find_token(expired) is None
    assert token_secrets.find_token(expiring) is not None


def test_the_fingerprint_names_one_secret_not_a_row_id(org):
    token = _token(org, "berth_one")
    fingerprint = token_secrets.fingerprint(token)
    assert token_secrets.find_live_token(token.id, fingerprint).id == token.id
    token.delete_instance()
    reused = _token(org, "berth_two", id=token.id)  # SQLite hands the id out again
    assert token_secrets.find_live_token(reused.id, fingerprint) is None
    assert token_secrets.find_live_token(str(reused.id), token_secrets.fingerprint(reused)) is None
    assert token_secrets.find_live_token(reused.id, None) is None


def test_basic_credentials():
    def basic(raw: bytes) -> str:
        return "Basic " + base64.b64encode(raw).decode()

    assert token_secrets.parse_basic(basic(b"u:p:w")) == ("u", "p:w")
    assert token_secrets.parse_basic("basic " + base64.b64encode(b":x").decode()) == ("", "x")
    for header in ("Bearer abc", "Basic", "Basic !!!", basic(b"no-colon"), basic(b"\xff:x"), ""):
        assert token_secrets.parse_basic(header) is None, header


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters=":"), max_size=20), st.text(max_size=40))
def test_any_basic_credentials_a_client_writes_read_back(username, password):
    header = "Basic " + base64.b64encode(f"{username}:{password}".encode("utf-8", "surrogatepass")).decode()
    try:
        f"{username}:{password}".encode()
    except UnicodeEncodeError:
        assert token_secrets.parse_basic(header) is None
    else:
        assert token_secrets.parse_basic(header) == (username, password)
