"""A token as the API shows it: its scope, registry and times, never its secret or hash."""

from __future__ import annotations

from app.api.tokens import render_token
from app.db.models import AccessToken, Registry
from tests.unit.api.conftest import ISO, T, in_order


def test_a_registry_token_names_its_scope_and_registry(org):
    registry = Registry.create(org=org, name="r")
    token = AccessToken.create(
        org=org,
        registry=registry,
        name="ci",
        token_hash="h",
        role="developer",
        created_at=T,
        created_by="alice",
        expires_at=T,
    )
    assert in_order(
        render_token(token),
        {
            "id": token.id,
            "name": "ci",
            "role": "developer",
            "scope": "push",
            "registry": "r",
            "created_at": ISO,
            "created_by": "alice",
            "expires_at": ISO,
            "last_used_at": None,
            "revoked_at": None,
        },
    )


def test_an_organization_token_of_a_role_without_a_scope(org):
    token = AccessToken.create(
        org=org, name="root", token_hash="h", role="owner", created_at=T, revoked_at=T, last_used_at=T
    )
    rendered = render_token(token)
    assert rendered["scope"] is None and rendered["registry"] is None
    assert rendered["revoked_at"] == rendered["last_used_at"] == ISO and rendered["expires_at"] is None
    assert "token_hash" not in rendered
