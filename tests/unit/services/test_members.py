"""Organization members on a real SQLite database: subjects and roles are checked, only an owner
grants or removes the owner role, and the last owner cannot leave."""

from __future__ import annotations

import pytest

from app.auth.subject import Subject
from app.db.models import Member, Organization
from app.services import members
from app.spec.errors import RegistryError


@pytest.fixture
def org(database):
    return Organization.create(name="o")


def _as(org, role):
    return Subject(name=role, roles={org.id: role})


@pytest.mark.parametrize("subject", ["alice", "alice@example.com", "oidc|123", "a:b+c"])
def test_subjects_a_provider_issues_are_taken(subject):
    assert members.check_subject(subject) == subject


@pytest.mark.parametrize("subject", ["", "alice\n", "-alice", "a b", "é", "a" * 256, None, 7])
def test_other_subjects_are_invalid(subject):
    with pytest.raises(RegistryError, match="INVALID"):
        members.check_subject(subject)


def test_a_member_is_created_then_changed(org):
    member, created = members.put_member(org, "alice", "reader", _as(org, "admin"))
    assert created and member.created_by == "admin"
    member, created = members.put_member(org, "alice", "developer", _as(org, "admin"))
    assert not created and Member.get(Member.subject == "alice").role == "developer"
    with pytest.raises(RegistryError, match="role must be one of"):
        members.put_member(org, "alice", "root", _as(org, "admin"))


def test_only_an_owner_makes_or_unmakes_an_owner(org):
    with pytest.raises(RegistryError, match="only an owner"):
        members.put_member(org, "alice", "owner", _as(org, "admin"))
    members.put_member(org, "alice", "owner", _as(org, "owner"))
    members.put_member(org, "bob", "owner", _as(org, "owner"))
    with pytest.raises(RegistryError, match="only an owner"):
        members.put_member(org, "alice", "reader", _as(org, "admin"))
    with pytest.raises(RegistryError, match="only an owner"):
        members.remove_member(org, "alice", _as(org, "admin"))


def test_the_last_owner_can_neither_leave_nor_be_demoted(org):
    members.put_member(org, "alice", "owner", _as(org, "owner"))
    with pytest.raises(RegistryError, match="last owner"):
        members.remove_member(org, "alice", _as(org, "owner"))
    with pytest.raises(RegistryError, match="last owner"):
        members.put_member(org, "alice", "admin", _as(org, "owner"))
    members.put_member(org, "bob", "owner", _as(org, "owner"))
    members.remove_member(org, "alice", _as(org, "owner"))
    assert [m.subject for m in Member.select()] == ["bob"]


def test_removing_who_is_not_a_member_is_not_found(org):
    with pytest.raises(RegistryError, match="NOT_FOUND"):
        members.remove_member(org, "nobody", _as(org, "owner"))
