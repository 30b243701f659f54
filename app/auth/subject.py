"""The subject of a request: who is calling, and what they may do.

A subject either holds organization roles (an access token, later an identity-provider user)
and is judged by the role matrix, or holds `grants` (a registry token from the token service)
and may do exactly what those grants say.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from app.auth.token_secrets import fingerprint, forget_kept
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
    # The access token behind the subject, as registry tokens name it: (id, fingerprint).
    credential: tuple[int, str] | None = None
    # Registry-token grants: (registry uid, repository inside the registry) -> actions
    # ("pull", "push", "delete", "*"); the catalog grant under app.auth.gate.CATALOG.
    grants: dict[tuple[str, str], frozenset[str]] | None = None

    def role_in(self, org_id: int, registry_id: int | None = None) -> str | None:
        if self.registry_id is not None and registry_id is not None and registry_id != self.registry_id:
            return None
        return self.roles.get(org_id)


ANONYMOUS = Subject(name="anonymous", anonymous=True)
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def for_access_token(token: AccessToken) -> Subject:
    mark_used(token)
    return Subject(
        name=f"token:{token.id}",
        roles={token.org_id: token.role},
        registry_id=token.registry_id,
        token_id=token.id,
        credential=(token.id, fingerprint(token)),
    )


def mark_used(token: AccessToken) -> None:
    """Record `last_used_at`, at most once a minute per token (not a write per request)."""
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        AccessToken.update(last_used_at=now).where(AccessToken.id == token.id).execute()
        forget_kept(token)
