"""The role matrix: what each role may do, which of two roles is stronger, and the ceiling a
token's role must stay under."""

from __future__ import annotations

import pytest

from app.auth import roles


@pytest.mark.parametrize(
    "role, action, allowed",
    [
        ("owner", roles.MANAGE_MEMBERS, True),
        ("admin", roles.MANAGE_MEMBERS, True),
        ("developer", roles.MANAGE_MEMBERS, False),
        ("developer", roles.PUSH, True),
        ("developer", roles.DELETE_REGISTRY, True),
        ("reader", roles.PULL, True),
        ("reader", roles.BROWSE, True),
        ("reader", roles.CREATE_TOKEN, True),
        ("reader", roles.PUSH, False),
        ("reader", roles.DELETE, False),
        ("reader", roles.CREATE_REGISTRY, False),
        (None, roles.PULL, False),
        ("superuser", roles.PULL, False),
    ],
)
def test_the_matrix(role, action, allowed):
    assert roles.allows(role, action) is allowed


def test_every_role_that_may_push_may_also_pull_and_delete():
    for role in roles.ROLES:
        if roles.allows(role, roles.PUSH):
            assert roles.allows(role, roles.PULL) and roles.allows(role, roles.DELETE)


def test_the_stronger_of_two_roles():
    assert roles.higher("reader", "admin") == roles.higher("admin", "reader") == "admin"
    assert roles.higher(None, "reader") == "reader" and roles.higher("owner", None) == "owner"
    assert roles.higher(None, None) is None


def test_a_role_is_at_most_its_ceiling():
    assert roles.at_most("reader", "developer") and roles.at_most("developer", "developer")
    assert not roles.at_most("admin", "developer")
    assert not roles.at_most("reader", None)  # no role: no ceiling to be under


def test_token_scopes_name_roles():
    assert all(role in roles.ROLES for role in roles.SCOPES.values())
    assert not roles.allows(roles.SCOPES["pull"], roles.PUSH) and roles.allows(roles.SCOPES["push"], roles.PUSH)
