"""A lifecycle operation as `GET /api/v1/operations/{id}` shows it."""

from __future__ import annotations

from app.api.operations import render_operation
from app.db.models import Operation, Registry
from tests.unit.api.conftest import ISO, T, in_order


def test_an_operation_with_its_steps_and_log_lines(org):
    registry = Registry.create(org=org, name="r")
    op = Operation.create(
        id="op-1",
        org=org,
        registry=registry,
        registry_name="r",
        kind="create",
        state="failed",
        steps='[{"name": "provision", "state": "failed"}]',
        attempts=2,
        error="boom",
        requested_by="alice",
        created_at=T,
        updated_at=T,
        finished_at=None,
        log="2026-11-29T12:00:00Z queued\n2026-11-29T12:00:01Z failed: boom\n",
    )
    assert in_order(
        render_operation(op),
        {
            "id": "op-1",
            "kind": "create",
            "state": "failed",
            "org": "o",
            "registry": "r",
            "steps": [{"name": "provision", "state": "failed"}],
            "attempts": 2,
            "error": "boom",
            "requested_by": "alice",
            "created_at": ISO,
            "updated_at": ISO,
            "finished_at": None,
            "log": ["2026-11-29T12:00:00Z queued", "2026-11-29T12:00:01Z failed: boom"],
            "links": {"self": "/api/v1/operations/op-1"},
        },
    )
