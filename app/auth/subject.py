"""The subject of a request: who is calling, and what they may do.

A subject either holds organization roles (an access token, later an identity-provider user)
and is judged by the role matrix, or holds `grants` (a registry token from the token service)
and may do exactly what those grants say.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from app.db.models import AccessToken, utcnow


@dataclass(frozen=True)
class Subject:
    name: str
    # org id -> role
    roles: dict[int, str] = field(default_factory=dict)
    # A token scoped to one registry grants nothing elsewhere.
    registry_id: int | None = None
    anonymous: bool = False
    token_id: int | None = None
    # Registry-token grants: (scope type, name) -> actions ("pull", "push", "delete", "*").
    grants: dict[tuple[str, str], frozenset[str]] | None = None
    # When a registry token was issued (its `iat`): grants name registries by name, so a token
    # issued before a registry of that name was (re)created grants nothing in it.
    issued_at: int | None = None

    def role_in(self, org_id: int, registry_id: int | None = None) -> str | None:
        if self.registry_id is not None and registry_id is not None and registry_id != self.registry_id:
            return None
        return self.roles.get(org_id)


ANONYMOUS = Subject(name="anonymous", anonymous=True)
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def for_access_token(token: AccessToken) -> Subject:
    mark_used(token)
    return Subject(name=f"token:{token.id}", roles={token.org_id: token.role},
                   registry_id=token.registry_id, token_id=token.id)


def mark_used(token: AccessToken) -> None:
    """Record `last_used_at`, at most once a minute per token (not a write per request)."""
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        AccessToken.update(last_used_at=now).where(AccessToken.id == token.id).execute()
