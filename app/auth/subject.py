"""The subject of a request: who is calling and which organization roles they hold."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from app.auth.credentials import find_token, parse_basic
from app.db.models import AccessToken, utcnow
from app.oci.errors import RegistryError


@dataclass(frozen=True)
class Subject:
    name: str
    # org id -> role
    roles: dict[int, str] = field(default_factory=dict)
    # A token scoped to one registry grants nothing elsewhere.
    registry_id: int | None = None
    anonymous: bool = False
    token_id: int | None = None

    def role_in(self, org_id: int, registry_id: int | None = None) -> str | None:
        if self.registry_id is not None and registry_id is not None and registry_id != self.registry_id:
            return None
        return self.roles.get(org_id)


ANONYMOUS = Subject(name="anonymous", anonymous=True)


def from_authorization(header: str | None) -> Subject:
    """Resolve an Authorization header (Basic with a token as password, or Bearer token).

    No header: the anonymous subject. A header that does not resolve: UNAUTHORIZED, never a
    silent fall back to anonymous.
    """
    if not header:
        return ANONYMOUS
    scheme = header.split(" ", 1)[0].lower()
    secret = None
    if scheme == "basic":
        parsed = parse_basic(header)
        secret = parsed[1] if parsed else None
    elif scheme == "bearer":
        secret = header.split(" ", 1)[1].strip() if " " in header else None
    token = find_token(secret) if secret else None
    if token is None:
        raise RegistryError("UNAUTHORIZED", "invalid credentials")
    mark_used(token)
    return Subject(
        name=f"token:{token.id}",
        roles={token.org_id: token.role},
        registry_id=token.registry_id,
        token_id=token.id,
    )


LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def mark_used(token: AccessToken) -> None:
    """Record `last_used_at`, at most once a minute per token (not a write per request)."""
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        AccessToken.update(last_used_at=now).where(AccessToken.id == token.id).execute()
