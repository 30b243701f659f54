"""The owners of an organization, and the rules about them, once: only an owner makes or unmakes
an owner, and an organization always keeps at least one.

An owner is an owner member (an identity-provider subject with a stored membership) or a live
(not revoked, not expired) organization-wide access token whose role is owner. Two kinds of
owner do not count: a registry-scoped owner token cannot manage the organization at all, and an
owner only by the identity provider's roles claim is not Berth's to keep (the next token the
provider issues may not carry the claim).
"""

from __future__ import annotations

from contextlib import contextmanager

from app.auth.subject import Subject
from app.auth.token_secrets import is_live
from app.db.models import AccessToken, Member, Organization, utcnow
from app.db.setup import serialize, transaction
from app.spec.errors import RegistryError


def is_owner(actor: Subject, org: Organization) -> bool:
    return actor.roles.get(org.id) == "owner"


def require_owner(actor: Subject, org: Organization, to: str) -> None:
    """DENIED unless `actor` is an owner; `to` completes "only an owner may ..."."""
    if not is_owner(actor, org):
        raise RegistryError(
            "DENIED",
            f"only an owner may {to}; {actor.name} is {actor.roles.get(org.id) or 'not a member'} in {org.name!r}",
        )


def counts_as_owner(token: AccessToken) -> bool:
    """Whether this access token is one of the organization's owners."""
    return token.role == "owner" and token.registry_id is None and is_live(token)


@contextmanager
def changing_owners(org: Organization):
    """A transaction in which the organization's owners are counted and changed with no other
    such change (in any replica) in between: otherwise two requests that each remove one of the
    last two owners would each see the other still there, and both succeed."""
    with transaction():
        serialize(f"owners:{org.id}")
        yield


def keep_an_owner(org: Organization, *, member: Member | None = None, token: AccessToken | None = None) -> None:
    """Inside `changing_owners`: CONFLICT if `member` or `token` is an owner and, without it, the
    organization would have none left."""
    leaving_member = member if member is not None and member.role == "owner" else None
    leaving_token = token if token is not None and counts_as_owner(token) else None
    if leaving_member is not None:
        what = f"member {leaving_member.subject!r}"
    elif leaving_token is not None:
        what = f"token {leaving_token.id}"
    else:
        return
    members = Member.select().where((Member.org == org) & (Member.role == "owner"))
    if leaving_member is not None:
        members = members.where(Member.id != leaving_member.id)
    now = utcnow()
    tokens = AccessToken.select().where(
        (AccessToken.org == org)
        & (AccessToken.role == "owner")
        & AccessToken.registry.is_null()
        & AccessToken.revoked_at.is_null()
        & (AccessToken.expires_at.is_null() | (AccessToken.expires_at > now))
    )
    if leaving_token is not None:
        tokens = tokens.where(AccessToken.id != leaving_token.id)
    if not members.exists() and not tokens.exists():
        raise RegistryError(
            "CONFLICT",
            f"{what} is the last owner of {org.name!r}; create another owner first: "
            "a member with role owner, or a token with role owner "
            "(berth token create <name> --role owner)",
        )
