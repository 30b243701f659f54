"""The one authorization gate: `authorize(subject, action, registry)`.

Every data-plane and management route calls it through its router, never from a responder.
"""

from __future__ import annotations

from app.auth import roles
from app.auth.subject import Subject
from app.db.models import Registry
from app.spec.errors import RegistryError

# Registry-token action names for the gate's actions.
TOKEN_ACTIONS = {roles.PULL: "pull", roles.PUSH: "push", roles.DELETE: "delete"}
CATALOG = ("registry", "catalog")


def is_allowed(subject: Subject, action: str, registry: Registry, repository: str | None = None) -> bool:
    """May `subject` do `action` in `registry` (on `repository`, its name inside the registry)?

    A registry token's grant holds in the registry it was issued for, named by its uid, and
    nowhere else: not in another registry whose repository has the same name, not in a registry
    created later under the same name."""
    if subject.grants is not None:
        if action == roles.BROWSE:
            # A catalog grant carries the roles it was issued for; judge those.
            return CATALOG in subject.grants and _by_role(subject, action, registry)
        granted = subject.grants.get((registry.uid, repository or ""), frozenset())
        return TOKEN_ACTIONS.get(action) in granted or "*" in granted
    return _by_role(subject, action, registry)


def _by_role(subject: Subject, action: str, registry: Registry) -> bool:
    if subject.anonymous:
        return registry.is_public and action in roles.ANONYMOUS_ON_PUBLIC
    if action == roles.PULL and registry.is_public:
        return True
    return roles.allows(subject.role_in(registry.org_id, registry.id), action)


def may_pull_every_repository(subject: Subject, registry: Registry) -> bool:
    """Whether `subject` may pull from every repository of `registry`: roles are registry-wide,
    a registry token's grants are per repository. A blob mount without `from=` takes the blob
    from whichever repository holds it, so only such a subject may do one."""
    return subject.grants is None and _by_role(subject, roles.PULL, registry)


def is_allowed_in_org(subject: Subject, action: str, org_id: int) -> bool:
    if subject.anonymous or subject.registry_id is not None or subject.grants is not None:
        return False
    return roles.allows(subject.roles.get(org_id), action)


def authorize(subject: Subject, action: str, registry: Registry, repository: str | None = None) -> None:
    """Raise UNAUTHORIZED (anonymous) or DENIED (authenticated) unless allowed."""
    if is_allowed(subject, action, registry, repository):
        return
    if subject.anonymous:
        raise RegistryError("UNAUTHORIZED", f"authentication required to {action}")
    message = f"{subject.name} may not {action} in registry {registry.name}"
    if subject.grants is not None:
        # The Docker token spec: a registry token that lacks the scope gets 401 with
        # error="insufficient_scope", so the client asks the token service again for it (and,
        # if the caller may not, gets a downscoped token and this DENIED message).
        raise RegistryError("DENIED", message, status=401, challenge_error="insufficient_scope")
    raise RegistryError("DENIED", message)


def authorize_org(subject: Subject, action: str, org_id: int) -> None:
    if is_allowed_in_org(subject, action, org_id):
        return
    if subject.anonymous:
        raise RegistryError("UNAUTHORIZED", "authentication required")
    raise RegistryError("DENIED", f"{subject.name} may not {action} in this organization")
