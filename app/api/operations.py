"""`/api/v1/operations/{id}`: follow a lifecycle operation; `.../retry` runs a failed one again."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import falcon

from app.auth import roles
from app.lifecycle import operations
from app.spec.errors import RegistryError

if TYPE_CHECKING:
    from app.db.models import Operation, Organization


def render_operation(operation: Operation) -> dict:
    return {
        "id": operation.id,
        "kind": operation.kind,
        "state": operation.state,
        "org": operation.org.name,
        "registry": operation.registry_name,
        "steps": json.loads(operation.steps),
        "attempts": operation.attempts,
        "error": operation.error,
        "requested_by": operation.requested_by,
        "created_at": _iso(operation.created_at),
        "updated_at": _iso(operation.updated_at),
        "finished_at": _iso(operation.finished_at),
        "log": operation.log.splitlines(),
        "links": {"self": f"/api/v1/operations/{operation.id}"},
    }


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def _operation(operation_id: str) -> Operation:
    """The operation the gate found (it answers 404 for an unknown one); 404 too should it have
    gone since (its registry deleted meanwhile)."""
    op = operations.find(operation_id)
    if op is None:
        raise RegistryError("NOT_FOUND", "not found")
    return op


def _org_of(params: dict) -> Organization | None:
    op = operations.find(params["operation_id"])
    return op.org if op is not None else None


class OperationResource:
    permissions = {"GET": roles.BROWSE}

    def org_for(self, params: dict) -> Organization | None:
        return _org_of(params)

    def on_get(self, req: falcon.Request, resp: falcon.Response, operation_id: str) -> None:
        resp.media = render_operation(_operation(operation_id))


class OperationRetryResource:
    permissions = {"POST": roles.CREATE_REGISTRY}
    audit = {"POST": "operation.retry"}

    def __init__(self, wake) -> None:
        self.wake = wake

    def org_for(self, params: dict) -> Organization | None:
        return _org_of(params)

    def on_post(self, req: falcon.Request, resp: falcon.Response, operation_id: str) -> None:
        op = operations.retry(_operation(operation_id), requested_by=req.context.subject.name)
        req.context.audit_target = {"registry": op.registry_name}
        self.wake()
        resp.status = falcon.HTTP_202
        resp.media = render_operation(op)
