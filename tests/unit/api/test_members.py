"""A member as `GET .../members` shows it."""

from __future__ import annotations

from app.api.members import render_member
from app.db.models import Member
from tests.unit.api.conftest import ISO, T, in_order


def test_a_member_with_its_role_and_who_granted_it(org):
    member = Member.create(org=org, subject="bob", role="reader", created_at=T, created_by="alice")
    assert in_order(
        render_member(member), {"subject": "bob", "role": "reader", "created_at": ISO, "created_by": "alice"}
    )
