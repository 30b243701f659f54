"""`/api/v1/operations/{id}` after the gate: an operation that is gone by the time its handler
runs (its registry deleted meanwhile) is a 404 like one that never was, not a 500."""

from __future__ import annotations

from types import SimpleNamespace

import falcon
import falcon.testing
import pytest

from app.api.operations import OperationResource, OperationRetryResource
from app.spec.errors import RegistryError


def test_showing_an_operation_that_is_gone_is_not_found(org):
    with pytest.raises(RegistryError) as refused:
        OperationResource().on_get(falcon.testing.create_req(), falcon.Response(), "op-gone")
    assert refused.value.code == "NOT_FOUND" and refused.value.status == 404


def test_retrying_an_operation_that_is_gone_is_not_found_and_wakes_no_worker(org):
    woken = []
    req = falcon.testing.create_req(method="POST")
    req.context.subject = SimpleNamespace(name="alice")
    with pytest.raises(RegistryError) as refused:
        OperationRetryResource(lambda: woken.append(True)).on_post(req, falcon.Response(), "op-gone")
    assert refused.value.code == "NOT_FOUND" and refused.value.status == 404 and not woken
