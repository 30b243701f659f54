"""Access tokens: issue (shown once), list, revoke. A token acts with a role no stronger than
its creator's, on one registry or the whole organization, until it expires or is revoked."""

from __future__ import annotations

import datetime as dt
import re

from app.auth import roles
from app.auth.subject import Subject
from app.auth.token_secrets import generate_token, hash_token
from app.clock import SYSTEM, Clock
from app.db.models import AccessToken, Organization, Registry, utcnow
from app.services import owners, paging
from app.spec.errors import RegistryError
from app.spec.names import REGISTRY

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}\Z")  # \Z: `$` passes "ci\n"
MAX_LIFETIME = dt.timedelta(days=3650)
# ASCII digits (`\d` takes any script's), few enough that int() never refuses them.
_DURATION = re.compile(r"^([0-9]{1,12})([smhd])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> dt.timedelta | None:
    """Seconds as an integer, or a string like `90s`, `15m`, `12h`, `30d`; None for no expiry."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        n, unit = match.groups()
        seconds = int(n) * _UNITS[unit]
    else:
        raise RegistryError(
            "INVALID", "expires_in is seconds, or a number followed by s, m, h or d (e.g. 30d)", field="expires_in"
        )
    if seconds <= 0 or seconds > MAX_LIFETIME.total_seconds():
        raise RegistryError("INVALID", "expires_in must be between 1 second and 10 years", field="expires_in")
    return dt.timedelta(seconds=seconds)


def token_role(scope: object, role: object) -> str:
    """The role a new token acts with, from `scope` (pull|push) or an explicit `role`."""
    if role is not None:
        if role not in roles.ROLES:
            raise RegistryError("INVALID", f"role must be one of {list(roles.ROLES)}", field="role")
        return role
    scope = scope or "pull"
    if scope not in roles.SCOPES:
        raise RegistryError("INVALID", f"scope must be one of {list(roles.SCOPES)}", field="scope")
    return roles.SCOPES[scope]


def create_token(
    org: Organization,
    creator: Subject,
    name: object,
    *,
    scope: object = None,
    role: object = None,
    registry: str | None = None,
    expires_in: object = None,
    clock: Clock = SYSTEM,
) -> tuple[AccessToken, str]:
    """Issue a token; returns (row, secret). The secret is never stored and never shown again."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RegistryError("INVALID", "name: 1-100 letters, digits, spaces and . _ -", field="name")
    wanted = token_role(scope, role)
    creator_role = creator.roles.get(org.id)
    if not roles.at_most(wanted, creator_role):
        raise RegistryError("DENIED", f"a token cannot hold {wanted!r}: its creator holds {creator_role!r}")
    registry_row = None
    if registry is not None:
        if not isinstance(registry, str) or not REGISTRY.fullmatch(registry):
            raise RegistryError(
                "INVALID", "registry must be the name of one of the organization's registries", field="registry"
            )
        registry_row = Registry.get_or_none((Registry.name == registry) & (Registry.org == org))
        if registry_row is None:
            raise RegistryError("NOT_FOUND", f"registry {registry!r} not found in {org.name!r}")
    if creator.registry_id is not None and (registry_row is None or registry_row.id != creator.registry_id):
        raise RegistryError("DENIED", "a registry-scoped credential can only create tokens for that registry")
    lifetime = parse_duration(expires_in)
    secret = generate_token()
    token = AccessToken.create(
        org=org,
        registry=registry_row,
        name=name,
        token_hash=hash_token(secret),
        role=wanted,
        created_by=creator.name,
        expires_at=clock.utcnow() + lifetime if lifetime else None,
    )
    return token, secret


def tokens_visible_to(org: Organization, viewer: Subject):
    """Owners and admins see every token of the organization; others see the ones they made."""
    query = AccessToken.select().where(AccessToken.org == org)
    if not roles.allows(viewer.roles.get(org.id), roles.MANAGE_MEMBERS):
        query = query.where(AccessToken.created_by == viewer.name)
    return query


def page_of_tokens(org: Organization, viewer: Subject, page: paging.Page) -> paging.Rows:
    """The tokens `viewer` may see (tokens_visible_to), by id."""
    return paging.keyset(tokens_visible_to(org, viewer), AccessToken.id, page)


def list_tokens(org: Organization, viewer: Subject) -> list[AccessToken]:
    return list(tokens_visible_to(org, viewer).order_by(AccessToken.id))


def parse_id(raw: str) -> int:
    """A token id from a URL; NOT_FOUND unless ASCII digits. (Falcon's `int` converter uses int(),
    which reads "١" and "0_1" as 1, and a 20-digit id overflows the database's integer.)"""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise RegistryError("NOT_FOUND", f"token {raw[:40]!r} not found")
    return int(raw)


def revoke_token(org: Organization, actor: Subject, token_id: int) -> AccessToken:
    """Revoke a token (again: a no-op). Owner tokens are revoked only by an owner, and never the
    organization's last owner (app/services/owners.py)."""
    with owners.changing_owners(org):
        token = AccessToken.get_or_none((AccessToken.id == token_id) & (AccessToken.org == org))
        manager = roles.allows(actor.roles.get(org.id), roles.MANAGE_MEMBERS)
        if token is None or not (manager or token.created_by == actor.name):
            raise RegistryError("NOT_FOUND", f"token {token_id} not found")
        if token.role == "owner":
            owners.require_owner(actor, org, f"revoke an owner token (token {token.id} acts as owner)")
        if token.revoked_at is None:
            owners.keep_an_owner(org, token=token)
            token.revoked_at = utcnow()
            token.save()
    return token
