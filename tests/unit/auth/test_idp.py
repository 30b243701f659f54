"""Identity-provider tokens against a real JWKS endpoint on loopback (tests/support/idp.py): a
good token maps to the stronger of claimed and stored roles; every bad one (wrong issuer,
audience, expired, unknown key, `none`, HMAC, an algorithm not its key's) is UNAUTHORIZED."""

from __future__ import annotations

import jwt
import pytest

from app.auth.idp import IdentityProvider, IdpSettings
from app.db.models import Member, Organization
from app.spec.errors import RegistryError
from tests.support import idp as stand_in


@pytest.fixture
def provider():
    p = stand_in.IdentityProvider()
    yield p
    p.stop()


@pytest.fixture
def idp(provider, database):
    return IdentityProvider(IdpSettings(provider.jwks_url, stand_in.ISSUER, stand_in.AUDIENCE, cooldown=0))


def _refused(idp, token, message=""):
    with pytest.raises(RegistryError, match=message) as raised:
        idp.subject(token)
    assert raised.value.code == "UNAUTHORIZED"


def test_a_good_token_is_a_user_with_the_stronger_of_claimed_and_stored_roles(provider, idp):
    a, b, c = (Organization.create(name=n) for n in ("a", "b", "c"))
    Member.create(org=a, subject="alice", role="admin")
    Member.create(org=c, subject="alice", role="reader")
    token = provider.token(
        "alice", kid="ec-1", orgs={"a": "reader", "b": "developer", "c": "owner", "z": "owner", "bogus": "emperor"}
    )
    subject = idp.subject(token)
    assert subject.name == "user:alice"
    assert subject.roles == {a.id: "admin", b.id: "developer", c.id: "owner"}


def test_a_roles_claim_that_is_not_a_mapping_grants_nothing(provider, idp):
    Organization.create(name="a")
    assert idp.subject(provider.token("bob", orgs=["a"])).roles == {}


@pytest.mark.parametrize(
    "claims, message",
    [
        ({"iss": "https://elsewhere"}, "(?i)issuer"),
        ({"aud": "someone-else"}, "(?i)audience"),
        ({"lifetime": -120}, "(?i)expired"),
    ],
)
def test_a_token_for_another_party_or_time_is_refused(provider, idp, claims, message):
    lifetime = claims.pop("lifetime", 300)
    _refused(idp, provider.token("alice", lifetime=lifetime, **claims), message)


def test_forged_and_malformed_tokens_are_refused(provider, idp):
    good = provider.token("alice")
    header, payload, _ = good.split(".")
    _refused(idp, "not.a.jwt", "malformed")
    _refused(idp, jwt.encode({"sub": "alice"}, None, algorithm="none"), "signed with one of")
    _refused(
        idp,
        jwt.encode(
            {"sub": "alice"}, "a-shared-secret-long-enough-for-hs256", algorithm="HS256", headers={"kid": "rsa-1"}
        ),
        "signed with one of",
    )
    _refused(idp, provider.token("alice", header_kid="nope"), "unknown key")
    _refused(idp, jwt.encode({"sub": "a"}, provider.keys["rsa-1"], algorithm="RS256"), "kid")
    _refused(idp, f"{header}.{payload}.AAAA", "invalid identity token")


def test_a_token_whose_algorithm_is_not_its_key_s_is_refused(provider, idp):
    # Signed with the EC key, but the header names the RSA key: pyjwt would raise TypeError.
    token = jwt.encode(
        {"iss": stand_in.ISSUER, "aud": stand_in.AUDIENCE, "sub": "x", "exp": 2**31},
        provider.keys["ec-1"],
        algorithm="ES256",
        headers={"kid": "rsa-1"},
    )
    _refused(idp, token, "its key is for RS256")


def test_a_token_without_a_subject_is_refused(provider, idp):
    _refused(idp, provider.token(""), "no subject")
