"""One place that sees every finished request: the access log line and the request metrics."""

from __future__ import annotations

import time

from app.edge import preflight
from app.telemetry.logs import access_log, access_record
from app.telemetry.metrics import Metrics


def _bytes_out(resp) -> int:
    if resp.content_length is not None:
        return int(resp.content_length)
    body = resp.render_body()
    return len(body) if body else 0


class RequestLog:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if preflight.passed(req):  # not a request: the one it let through is logged
            return
        started = getattr(req.context, "started", None)
        duration = time.perf_counter() - started if started else 0.0
        bytes_in = req.content_length or 0
        bytes_out = 0 if req.method == "HEAD" else _bytes_out(resp)
        record = access_record(req, resp, duration, bytes_in, bytes_out)
        self.metrics.observe(
            record["route"], req.method, record["status"], duration, record["registry"], bytes_in, bytes_out
        )
        access_log.info("request", extra=record)
