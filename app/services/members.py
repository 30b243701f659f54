"""Organization members: who holds which role. The rules about owners are in app/services/owners.py."""

from __future__ import annotations

import re

from app.auth import roles
from app.auth.subject import Subject
from app.db.models import Member, Organization
from app.services import owners, paging
from app.spec.errors import RegistryError

_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:+|-]{0,254}\Z")  # \Z: `$` passes "alice\n"


def check_subject(subject: str) -> str:
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise RegistryError(
            "INVALID",
            "a member is an identity-provider subject or user name: 1-255 of letters, digits and @ . _ : + | -",
        )
    return subject


def check_role(role: object) -> str:
    if role not in roles.ROLES:
        raise RegistryError("INVALID", f"role must be one of {list(roles.ROLES)}")
    return role


def page_of_members(org: Organization, page: paging.Page) -> paging.Rows:
    """The members of `org`, by subject."""
    return paging.keyset(Member.select().where(Member.org == org), Member.subject, page)


def get_member(org: Organization, subject: str) -> Member:
    member = Member.get_or_none((Member.org == org) & (Member.subject == subject))
    if member is None:
        raise RegistryError("NOT_FOUND", f"{subject!r} is not a member of {org.name!r}")
    return member


def _owner_rule(actor: Subject, org: Organization, *roles_touched: str | None) -> None:
    if "owner" in roles_touched:
        owners.require_owner(actor, org, "grant or remove the owner role")


def put_member(org: Organization, subject: str, role: object, actor: Subject) -> tuple[Member, bool]:
    """Grant `role` to `subject` (creating or changing the membership). Returns (member, created)."""
    check_subject(subject)
    role = check_role(role)
    with owners.changing_owners(org):
        existing = Member.get_or_none((Member.org == org) & (Member.subject == subject))
        _owner_rule(actor, org, role, existing.role if existing else None)
        if existing is None:
            return Member.create(org=org, subject=subject, role=role, created_by=actor.name), True
        if existing.role != role:
            owners.keep_an_owner(org, member=existing)
            existing.role = role
            existing.save()
        return existing, False


def remove_member(org: Organization, subject: str, actor: Subject) -> None:
    with owners.changing_owners(org):
        member = get_member(org, subject)
        _owner_rule(actor, org, member.role)
        owners.keep_an_owner(org, member=member)
        member.delete_instance()
