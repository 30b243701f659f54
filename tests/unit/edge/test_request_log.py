"""Every finished request is logged once and counted in the request metrics; a passed preflight
is not a request, so it is neither."""

from __future__ import annotations

import logging

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.edge import preflight
from app.edge.request_log import RequestLog
from app.telemetry.metrics import Metrics
from tests.support.tiny_app import tiny_app


class Body:
    def on_get(self, req, resp, **params):
        resp.data = b"0123456789"

    on_head = on_get

    def on_post(self, req, resp, **params):
        preflight.allow(req)
        resp.status = 201


def counted(metrics: Metrics) -> dict:
    """Requests counted, by (method, status)."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "berth_http_requests_total"
    }


def records(caplog):
    return [r for r in caplog.records if r.name == "berth.access"]


def test_a_request_is_logged_with_its_status_and_bytes_and_counted(caplog):
    metrics = Metrics()
    http = tiny_app(RequestLog(metrics), resource=Body())
    with caplog.at_level(logging.INFO, logger="berth.access"):
        http.simulate_get("/v2/x")
        http.simulate_head("/v2/x")
        http.simulate_post("/v2/x", body=b"abc")
    logged = [(r.method, r.status, r.bytes_in, r.bytes_out) for r in records(caplog)]
    assert logged == [("GET", 200, 0, 10), ("HEAD", 200, 0, 0), ("POST", 201, 3, 0)]
    assert counted(metrics) == {("GET", "200"): 1, ("HEAD", "200"): 1, ("POST", "201"): 1}


def test_a_passed_preflight_is_neither_logged_nor_counted_but_a_refused_one_is(caplog):
    metrics = Metrics()
    http = tiny_app(RequestLog(metrics), resource=Body())
    with caplog.at_level(logging.INFO, logger="berth.access"):
        passed = http.simulate_post("/v2/x", extras={preflight.KEY: preflight.Preflight()})
        refused = http.simulate_put("/v2/x", extras={preflight.KEY: preflight.Preflight()})
    assert (passed.status_code, refused.status_code) == (204, 405)
    assert [r.status for r in records(caplog)] == [405]
    assert counted(metrics) == {("PUT", "405"): 1}
