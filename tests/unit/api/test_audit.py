"""An audit event as `GET .../audit` shows it: its detail parsed back into JSON."""

from __future__ import annotations

from app.api.audit import render_event
from app.db.models import AuditEvent
from tests.unit.api.conftest import ISO, T, in_order


def test_an_event_with_its_detail(org):
    event = AuditEvent.create(
        org=org,
        time=T,
        actor="alice",
        action="registry.create",
        registry="r",
        repository="team/app",
        digest="sha256:1",
        tag="v1",
        detail='{"push": true}',
        outcome="success",
        status=201,
        client_ip="192.0.2.1",
        request_id="req-1",
    )
    assert in_order(
        render_event(event),
        {
            "id": event.id,
            "time": ISO,
            "actor": "alice",
            "action": "registry.create",
            "registry": "r",
            "repository": "team/app",
            "digest": "sha256:1",
            "tag": "v1",
            "detail": {"push": True},
            "outcome": "success",
            "status": 201,
            "client_ip": "192.0.2.1",
            "request_id": "req-1",
        },
    )


def test_an_event_without_detail_has_null(org):
    event = AuditEvent.create(org=org, time=T, actor="bob", action="token.create", outcome="denied", status=403)
    rendered = render_event(event)
    assert rendered["detail"] is None and rendered["registry"] is None and rendered["outcome"] == "denied"
