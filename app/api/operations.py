"""`/api/v1/operations/{id}`: follow a lifecycle operation; `.../retry` runs a failed one again."""

from __future__ import annotations

import falcon

from app.auth import roles
from app.db.models import Operation, Organization
from app.lifecycle import operations


def _operation(params: dict) -> Operation | None:
    return Operation.get_or_none(Operation.id == params["operation_id"])


class OperationResource:
    permissions = {"GET": roles.BROWSE}

    def org_for(self, params: dict) -> Organization | None:
        op = _operation(params)
        return op.org if op is not None else None

    def on_get(self, req: falcon.Request, resp: falcon.Response, operation_id: str) -> None:
        resp.media = operations.render(_operation({"operation_id": operation_id}))


class OperationRetryResource:
    permissions = {"POST": roles.CREATE_REGISTRY}
    audit = {"POST": "operation.retry"}

    def __init__(self, wake) -> None:
        self.wake = wake

    def org_for(self, params: dict) -> Organization | None:
        op = _operation(params)
        return op.org if op is not None else None

    def on_post(self, req: falcon.Request, resp: falcon.Response, operation_id: str) -> None:
        op = operations.retry(_operation({"operation_id": operation_id}), requested_by=req.context.subject.name)
        req.context.audit_target = {"registry": op.registry_name}
        self.wake()
        resp.status = falcon.HTTP_202
        resp.media = operations.render(op)
