"""`GET /api/v1/orgs`: the organizations the caller belongs to, with its role in each."""

from __future__ import annotations

import falcon

from app.auth import roles
from app.db.models import Organization


class OrgsResource:
    # Any authenticated caller; the list is filtered to its own memberships.
    permissions = {"GET": roles.BROWSE}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        subject = req.context.subject
        ids = [org_id for org_id, role in subject.roles.items() if roles.allows(role, roles.BROWSE)]
        orgs = Organization.select().where(Organization.id.in_(ids)).order_by(Organization.name) if ids else []
        resp.media = {"orgs": [{"name": o.name, "role": subject.roles[o.id],
                                "created_at": o.created_at.isoformat() + "Z",
                                "links": {"registries": f"/api/v1/orgs/{o.name}/registries"}} for o in orgs]}
