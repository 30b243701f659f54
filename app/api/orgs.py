"""`GET /api/v1/orgs`: the organizations the caller belongs to, with its role in each."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from app.auth import roles
from app.services import registries

if TYPE_CHECKING:
    from app.db.models import Organization


def render_org(org: Organization, role: str) -> dict:
    return {
        "name": org.name,
        "role": role,
        "created_at": org.created_at.isoformat() + "Z",
        "links": {"registries": f"/api/v1/orgs/{org.name}/registries"},
    }


class OrgsResource:
    # Any authenticated caller; the list is filtered to its own memberships.
    permissions = {"GET": roles.BROWSE}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        subject = req.context.subject
        ids = [org_id for org_id, role in subject.roles.items() if roles.allows(role, roles.BROWSE)]
        resp.media = {"orgs": [render_org(o, subject.roles[o.id]) for o in registries.orgs_with_ids(ids)]}
