"""An organization as `GET /api/v1/orgs` shows it."""

from __future__ import annotations

from app.api.orgs import render_org
from tests.unit.api.conftest import ISO, in_order


def test_an_organization_with_the_callers_role_and_where_its_registries_are(org):
    assert in_order(
        render_org(org, "admin"),
        {"name": "o", "role": "admin", "created_at": ISO, "links": {"registries": "/api/v1/orgs/o/registries"}},
    )
