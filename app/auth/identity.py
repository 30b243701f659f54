"""Who is calling: turn a request's credentials into a Subject, for each plane.

- Data plane (`/v2`): a registry token (`Bearer <JWT>` from our token service), or Basic /
  Bearer with an access token. No credentials: anonymous.
- Token endpoint (`/auth/token`): Basic or the OAuth2 password/refresh grants.
- Management (`/api/v1`): Bearer access token or identity-provider JWT.
Wherever a password is taken (Basic, the OAuth2 password grant), an identity-provider JWT
works as the password too (with any username).
Bad credentials are always UNAUTHORIZED, never a silent fall back to anonymous.
"""

from __future__ import annotations

import falcon
import jwt

from app.auth.gate import CATALOG
from app.auth.idp import IdentityProvider
from app.auth.registry_tokens import ISSUER, RegistryTokens, looks_like_jwt
from app.auth.subject import ANONYMOUS, Subject, for_access_token
from app.auth.throttle import LoginThrottle
from app.auth.token_secrets import find_live_token, find_token, parse_basic
from app.clock import SYSTEM, Clock
from app.spec.errors import RegistryError

BAD_CREDENTIALS = "invalid credentials: use an access token as the password (berth token create)"


def service_of(req: falcon.Request) -> str:
    """The `service` of the token flow: the host the client addressed (host[:port])."""
    return req.netloc.lower()


def challenge(req: falcon.Request, scope: str | None = None) -> str:
    value = f'Bearer realm="{req.scheme}://{req.netloc}/auth/token",service="{service_of(req)}"'
    return value + (f',scope="{scope}"' if scope else "")


class Identity:
    def __init__(
        self,
        registry_tokens: RegistryTokens,
        idp: IdentityProvider | None = None,
        throttle: LoginThrottle | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.registry_tokens = registry_tokens
        self.clock = clock  # access tokens' expiry
        self.idp = idp
        self.throttle = throttle or LoginThrottle()

    def guarded(self, req: falcon.Request):
        """Count this request's credential failures against its client address."""
        return self.throttle.attempt(getattr(req.context, "client_ip", None) or req.remote_addr or "unknown")

    def from_password(self, password: str) -> Subject:
        """The subject behind a password: an access token, or an identity-provider JWT."""
        if self.idp is not None and looks_like_jwt(password):
            return self.idp.subject(password)
        token = find_token(password, self.clock)
        if token is None:
            raise RegistryError("UNAUTHORIZED", BAD_CREDENTIALS)
        return for_access_token(token)

    def from_basic(self, header: str) -> Subject:
        parsed = parse_basic(header)
        if parsed is None:
            raise RegistryError("UNAUTHORIZED", "malformed Basic credentials")
        if parsed == ("", ""):
            # containers/image sends `Basic Og==` (":") when it has no credentials: anonymous.
            return ANONYMOUS
        return self.from_password(parsed[1])

    def data_plane(self, req: falcon.Request) -> Subject:
        header = req.get_header("Authorization")
        if not header:
            return ANONYMOUS
        with self.guarded(req):
            return self._data_plane(req, header)

    def _data_plane(self, req: falcon.Request, header: str) -> Subject:
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "basic":
            return self.from_basic(header)
        if scheme == "bearer" and value:
            if looks_like_jwt(value) and not self._is_idp_token(value):
                return self._registry_token(value, service_of(req))
            return self.from_password(value)
        raise RegistryError("UNAUTHORIZED", "unsupported Authorization scheme: use Basic or Bearer")

    def management(self, req: falcon.Request) -> Subject:
        header = req.get_header("Authorization")
        if not header:
            return ANONYMOUS
        with self.guarded(req):
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise RegistryError("UNAUTHORIZED", "send Authorization: Bearer <access token or identity token>")
            return self.from_password(value.strip())

    def _is_idp_token(self, value: str) -> bool:
        """Registry tokens carry our issuer; anything else that looks like a JWT is the IdP's."""
        if self.idp is None:
            return False
        try:
            return jwt.decode(value, options={"verify_signature": False}).get("iss") != ISSUER
        except jwt.PyJWTError:
            return False

    def _registry_token(self, value: str, service: str) -> Subject:
        claims = self.registry_tokens.verify(value, service)
        if claims is None:
            raise RegistryError("UNAUTHORIZED", "invalid or expired registry token; fetch a new one")
        token_id = claims.get("tid")
        if token_id is not None and find_live_token(token_id, claims.get("tfp"), self.clock) is None:
            raise RegistryError("UNAUTHORIZED", "the credential behind this registry token was revoked or expired")
        claimed = claims.get("roles")
        roles = claimed if isinstance(claimed, dict) else {}
        return Subject(
            name=str(claims["sub"]),
            token_id=token_id,
            grants=_grants(claims["access"]),
            anonymous=claims["sub"] == ANONYMOUS.name,
            roles={int(k): v for k, v in roles.items() if _is_ascii_number(k) and isinstance(v, str)},
            registry_id=claims.get("rid") if isinstance(claims.get("rid"), int) else None,
        )


def _grants(access: list) -> dict[tuple[str, str], frozenset[str]]:
    """A token's `access` claim as the gate reads it: repository grants under (registry uid,
    repository inside it); an entry that names no registry grants nothing."""
    grants: dict[tuple[str, str], frozenset[str]] = {}
    for entry in access:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(entry.get("actions"), list)
        ):
            continue
        actions = frozenset(a for a in entry["actions"] if isinstance(a, str))
        if entry.get("type") == "registry" and entry["name"] == "catalog":
            key = CATALOG
        elif (
            entry.get("type") == "repository"
            and isinstance(entry.get("registry"), str)
            and isinstance(entry.get("repository"), str)
        ):
            key = (entry["registry"], entry["repository"])
        else:
            continue
        grants[key] = grants.get(key, frozenset()) | actions
    return grants


def _is_ascii_number(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit()
