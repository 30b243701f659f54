"""The audit trail's two ends: the middleware that records, and `GET /api/v1/orgs/{org}/audit`.

What is audited is declared where it happens: a management resource's `audit = {"POST":
"registry.create"}`, or `req.context.audit_action` set by the data-plane router for pushes, tag
moves and deletes. Resources add what they learn (`req.context.audit_target`, `audit_detail`).
Requests that never authenticated (the 401 that starts every token handshake) are not audited.

A resource whose action is a database transaction may write the record inside it, so that the
action and its record commit together: `req.context.audit_now(status)` writes it at once (raising
what the database raises) and this middleware then writes nothing more for the request. A
manifest push does so (app/oci/manifests.py); a refused push is recorded here, afterwards.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import falcon

from app.api import pagination
from app.auth import roles
from app.edge import media, preflight
from app.services import audit

if TYPE_CHECKING:
    from app.db.models import AuditEvent


def render_event(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "time": event.time.isoformat() + "Z",
        "actor": event.actor,
        "action": event.action,
        "registry": event.registry,
        "repository": event.repository,
        "digest": event.digest,
        "tag": event.tag,
        "detail": json.loads(event.detail) if event.detail else None,
        "outcome": event.outcome,
        "status": event.status,
        "client_ip": event.client_ip,
        "request_id": event.request_id,
    }


class AuditTrail:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.audit_target = {}
        req.context.audit_detail = None
        req.context.audit_recorded = False

        def now(status: int) -> None:
            self._write(req, status, None, audit.write_within)
            req.context.audit_recorded = True

        req.context.audit_now = now

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        if getattr(req.context, "audit_recorded", False):
            return
        self._write(req, int(resp.status_code), resource, audit.record)

    @staticmethod
    def _write(req: falcon.Request, status: int, resource, write) -> None:
        action = getattr(req.context, "audit_action", None) or (getattr(resource, "audit", None) or {}).get(req.method)
        subject = getattr(req.context, "subject", None)
        if action is None or subject is None or subject.anonymous or preflight.passed(req):
            return
        org = getattr(req.context, "org", None)
        org_id = org.id if org is not None else getattr(req.context, "audit_org_id", None)
        if org_id is None:
            return  # nothing resolved: the request named no organization the caller may see
        target = dict(req.context.audit_target or {})
        registry = getattr(req.context, "registry", None)
        if registry is not None and not isinstance(registry, str):
            target.setdefault("registry", registry.name)
        write(
            org_id=org_id,
            actor=subject.name,
            action=action,
            status=status,
            registry=target.get("registry"),
            repository=target.get("repository"),
            digest=target.get("digest"),
            tag=target.get("tag"),
            detail=req.context.audit_detail,
            client_ip=getattr(req.context, "client_ip", None),
            request_id=getattr(req.context, "request_id", None),
        )


class AuditResource:
    permissions = {"GET": roles.MANAGE_MEMBERS}

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        since = audit.parse_time(media.query(req, "since"), "since")
        until = audit.parse_time(media.query(req, "until"), "until")
        rows = audit.page_of_events(
            req.context.org.id,
            pagination.page_of(req, int),
            actor=req.get_param("actor"),
            action=req.get_param("action"),
            registry=req.get_param("registry"),
            since=since,
            until=until,
        )
        resp.media = pagination.body("events", [render_event(e) for e in rows.items], rows)
        pagination.link(req, resp, rows)
