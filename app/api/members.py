"""`/api/v1/orgs/{org}/members[/{subject}]`: list, grant, change and remove members."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from app.api import pagination
from app.auth import roles
from app.services import members
from app.spec.errors import RegistryError

if TYPE_CHECKING:
    from app.db.models import Member


def render_member(member: Member) -> dict:
    return {
        "subject": member.subject,
        "role": member.role,
        "created_at": member.created_at.isoformat() + "Z",
        "created_by": member.created_by,
    }


class MembersResource:
    permissions = {"GET": roles.BROWSE}

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        rows = members.page_of_members(req.context.org, pagination.page_of(req, str))
        resp.media = pagination.body("members", [render_member(m) for m in rows.items], rows)
        pagination.link(req, resp, rows)


class MemberResource:
    permissions = {"GET": roles.BROWSE, "PUT": roles.MANAGE_MEMBERS, "DELETE": roles.MANAGE_MEMBERS}
    audit = {"PUT": "member.set", "DELETE": "member.remove"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str, subject: str) -> None:
        resp.media = render_member(members.get_member(req.context.org, subject))

    def on_put(self, req: falcon.Request, resp: falcon.Response, org: str, subject: str) -> None:
        body = req.get_media(default_when_empty=None)
        if not isinstance(body, dict):
            raise RegistryError("INVALID", 'send a JSON object: {"role": "owner"|"admin"|"developer"|"reader"}')
        req.context.audit_detail = {"subject": subject, "role": body.get("role")}
        member, created = members.put_member(req.context.org, subject, body.get("role"), req.context.subject)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = render_member(member)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, org: str, subject: str) -> None:
        req.context.audit_detail = {"subject": subject}
        members.remove_member(req.context.org, subject, req.context.subject)
        resp.status = falcon.HTTP_204
