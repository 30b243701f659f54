"""The platform identity provider: verify its JWTs and map their claims to organization roles.

Keys come from `BERTH_OIDC_JWKS_URL` (app/auth/jwks.py: cached, fetched again at most once per
cool-down when a token names an unknown `kid`, on a thread of its own with a timeout, so that a
hanging provider holds up no request whose key is cached). Issuer, audience, expiry and
not-before are checked; only RS256 and ES256 are accepted, so neither `none` nor an HMAC keyed
with a public key can pass, and the token's algorithm must be its key's. Whatever does not
verify is UNAUTHORIZED, never a 500.

Roles: a subject's role in an organization is the stronger of its stored membership
(`/api/v1/orgs/{org}/members/{sub}`) and the role the token's roles claim gives it (by default
`{"orgs": {"<org>": "<role>"}}`). Claims can grant, memberships can grant; neither takes away
what the other gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from app.auth import roles
from app.auth.jwks import KeysUnavailable, SigningKeys, UnknownKey
from app.auth.subject import Subject
from app.db.models import Member, Organization
from app.spec.errors import RegistryError

ALGORITHMS = ["RS256", "ES256"]
SUBJECT_PREFIX = "user:"


@dataclass
class IdpSettings:
    jwks_url: str
    issuer: str
    audience: str
    roles_claim: str = "orgs"
    timeout: float = 3.0  # one JWKS fetch
    leeway: float = 30.0
    cooldown: float = 10.0  # between the starts of two JWKS fetches
    lifespan: float = 300.0  # cached keys older than this are fetched again (in the background)


class IdentityProvider:
    def __init__(self, settings: IdpSettings) -> None:
        self.settings = settings
        self.keys = SigningKeys(
            settings.jwks_url, timeout=settings.timeout, cooldown=settings.cooldown, lifespan=settings.lifespan
        )

    def verify(self, token: str) -> dict:
        """The claims of a valid IdP token; UNAUTHORIZED otherwise (never a 500)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise RegistryError("UNAUTHORIZED", "malformed identity token") from None
        if header.get("alg") not in ALGORITHMS:
            raise RegistryError("UNAUTHORIZED", f"identity tokens must be signed with one of {ALGORITHMS}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise RegistryError("UNAUTHORIZED", "identity token names no key (kid)")
        try:
            key = self.keys.get(kid)
        except KeysUnavailable:
            raise RegistryError("UNAUTHORIZED", "the identity provider's keys cannot be fetched right now") from None
        except UnknownKey:
            raise RegistryError("UNAUTHORIZED", "identity token signed by an unknown key") from None
        if key.algorithm_name != header["alg"]:
            # pyjwt raises TypeError when handed a key of another type (ES256 naming an RSA key).
            raise RegistryError(
                "UNAUTHORIZED", f"identity token is {header['alg']}, but its key is for {key.algorithm_name}"
            )
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[header["alg"]],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, TypeError, ValueError) as e:
            raise RegistryError("UNAUTHORIZED", f"invalid identity token: {e}") from None

    def subject(self, token: str) -> Subject:
        claims = self.verify(token)
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise RegistryError("UNAUTHORIZED", "identity token has no subject")
        return Subject(name=SUBJECT_PREFIX + sub, roles=self.roles_for(sub, claims))

    def roles_for(self, sub: str, claims: dict) -> dict[int, str]:
        """org id -> the stronger of the stored membership and the claimed role."""
        claimed = claims.get(self.settings.roles_claim)
        by_name = {}
        if isinstance(claimed, dict):
            by_name = {k: v for k, v in claimed.items() if isinstance(k, str) and v in roles.ROLES}
        result: dict[int, str] = {}
        if by_name:
            for org in Organization.select().where(Organization.name.in_(list(by_name))):
                result[org.id] = by_name[org.name]
        for member in Member.select().where(Member.subject == sub):
            role = roles.higher(result.get(member.org_id), member.role)
            if role is not None:  # always: a stored role is never empty
                result[member.org_id] = role
        return result
