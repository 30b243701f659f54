"""Registry tokens: the Docker token flow's short-lived JWTs (ES256, `kid`, JWKS-published).

`issue()` takes the scopes a client asked for and grants each one only the actions the caller
may do (downscoping, never refusing); `verify()` turns a presented token back into a subject
whose rights are exactly its grants.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from app.auth.keys import KeyRing
from app.clock import SYSTEM, Clock

ISSUER = "berth-token-service"
LIFETIME = 300  # seconds; clients fetch a new one when it runs out
REFRESH_LIFETIME = 30 * 86400
ACTIONS = ("pull", "push", "delete")
# The access token a registry token was issued for: its id and its fingerprint
# (app/auth/token_secrets.py), so a later token that reuses the id is never mistaken for it.
Credential = tuple[int, str]
_SCOPE = re.compile(r"^(repository|registry)(?:\([a-z0-9]+\))?:([^:]+):([a-z*,]*)$")


@dataclass(frozen=True)
class Scope:
    type: str  # repository | registry
    name: str  # a repository name as the client writes it, or "catalog"
    actions: tuple[str, ...]

    def claim(self, granted: list[str], registry_uid: str | None = None, repository: str | None = None) -> dict:
        """The token's `access` entry. A repository grant also names the repository it holds for
        exactly: the registry by its never-reused uid and the repository's name inside it. The
        gate honours it there and nowhere else, however the request addresses it."""
        entry = {"type": self.type, "name": self.name, "actions": granted}
        if registry_uid is not None and repository is not None:
            entry["registry"], entry["repository"] = registry_uid, repository
        return entry


def parse_scopes(values: list[str]) -> list[Scope]:
    """`repository:<name>:<actions>` and `registry:catalog:*`; space-separated lists allowed.
    Unparseable scopes are dropped (granted nothing), as downscoping asks."""
    scopes = []
    for value in values:
        for item in value.split():
            m = _SCOPE.fullmatch(item)
            if m is None:
                continue
            actions = tuple(a for a in m.group(3).split(",") if a)
            scopes.append(Scope(m.group(1), m.group(2), actions))
    return scopes


VERIFIED_CACHE = 4096  # registry tokens whose signature this process has checked
LEEWAY = 5  # seconds of clock skew allowed on exp/nbf


class RegistryTokens:
    def __init__(self, keys: KeyRing, clock: Clock = SYSTEM) -> None:
        self.keys = keys
        self.clock = clock  # iat/nbf/exp, issued and checked
        # A client sends the same token on every request of a pull (for its 5 minutes): its
        # ES256 signature is checked once (~150 us), then its claims come from here until it
        # expires or its signing key leaves the ring. A token is immutable, so nothing else
        # about it can change; what can (its credential revoked) is checked on every request.
        self._verified: OrderedDict[tuple[str, str], tuple[dict, str]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def issue(
        self,
        subject_name: str,
        service: str,
        access: list[dict],
        credential: Credential | None,
        roles: dict[str, str] | None = None,
        registry_id: int | None = None,
    ) -> tuple[str, int]:
        """A registry token. `roles`/`registry_id` ride along only with a catalog grant, so the
        catalog can be filtered to what the caller may browse. `credential` is the access token
        it was issued for, checked again on every use."""
        now = int(self.clock.time())
        claims = {
            "iss": ISSUER,
            "sub": subject_name,
            "aud": service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + LIFETIME,
            "jti": secrets.token_urlsafe(12),
            "access": access,
        }
        if credential is not None:
            claims["tid"], claims["tfp"] = credential
        if roles:
            claims["roles"] = roles
        if registry_id is not None:
            claims["rid"] = registry_id
        key = self.keys.active
        return jwt.encode(claims, key.private, algorithm="ES256", headers={"kid": key.kid}), LIFETIME

    def issue_refresh(self, subject_name: str, service: str, credential: Credential) -> str:
        now = int(self.clock.time())
        claims = {
            "iss": ISSUER,
            "sub": subject_name,
            "aud": f"{service}#refresh",
            "iat": now,
            "nbf": now - 5,
            "exp": now + REFRESH_LIFETIME,
            "tid": credential[0],
            "tfp": credential[1],
            "jti": secrets.token_urlsafe(12),
        }
        key = self.keys.active
        return jwt.encode(claims, key.private, algorithm="ES256", headers={"kid": key.kid})

    def _decode(self, token: str, audience: str) -> dict | None:
        with self._verified_lock:
            hit = self._verified.get((token, audience))
            if hit is not None:
                self._verified.move_to_end((token, audience))
        if hit is not None:
            claims, kid = hit
            if claims["exp"] + LEEWAY > self.clock.time() and self.keys.find(kid) is not None:
                return claims
            with self._verified_lock:  # expired, or its key was removed: it can never verify again
                self._verified.pop((token, audience), None)
            return None
        verified = self._verify(token, audience)
        if verified is None:
            return None
        claims, kid = verified
        if isinstance(claims.get("exp"), int):
            with self._verified_lock:
                self._verified[(token, audience)] = (claims, kid)
                while len(self._verified) > VERIFIED_CACHE:
                    self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str, audience: str) -> tuple[dict, str] | None:
        """(claims, key id) of a token whose signature and claims check out, or None."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if header.get("alg") != "ES256":
            return None
        key = self.keys.find(header.get("kid"))
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=["ES256"],
                audience=audience,
                issuer=ISSUER,
                # pyjwt would check iat/nbf/exp against the system clock; _in_time does, against ours.
                options={
                    "require": ["exp", "iat", "nbf", "aud", "iss", "sub"],
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_exp": False,
                },
            )
        except jwt.PyJWTError:
            return None
        return (claims, key.kid) if _in_time(claims, self.clock.time()) else None

    def verify(self, token: str, service: str) -> dict | None:
        """The claims of a valid registry token for this service, or None."""
        claims = self._decode(token, service)
        if claims is None or not isinstance(claims.get("access"), list):
            return None
        return claims

    def verify_refresh(self, token: str, service: str) -> dict | None:
        claims = self._decode(token, f"{service}#refresh")
        return claims if claims and isinstance(claims.get("tid"), int) and isinstance(claims.get("tfp"), str) else None


def _in_time(claims: dict, now: float) -> bool:
    """pyjwt's iat, nbf and exp checks (jwt.api_jwt._validate_iat/_nbf/_exp), with LEEWAY."""
    try:
        iat, nbf, exp = int(claims["iat"]), int(claims["nbf"]), int(claims["exp"])
    except (ValueError, TypeError, OverflowError):
        return False
    return iat <= now + LEEWAY and nbf <= now + LEEWAY and exp > now - LEEWAY


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and not value.startswith("berth_")
