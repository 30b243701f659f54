"""Structured JSON logging (python-json-logger): one line per request, and every other log
record as JSON too. Request lines carry no headers and no query strings' secrets: only the
fields listed in `access_record`."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

access_log = logging.getLogger("berth.access")

# Enough for any real client's User-Agent ("containerd/1.6.20~ds1", "docker/24.0.5 go/... os/...");
# a longer one is cut so that no caller can make the log lines arbitrarily long.
USER_AGENT_LIMIT = 256


def configure(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def access_record(req, resp, duration: float, bytes_in: int, bytes_out: int) -> dict:
    ctx = req.context
    subject = getattr(ctx, "subject", None)
    return {
        "request_id": getattr(ctx, "request_id", None),
        "method": req.method,
        "route": getattr(ctx, "route", None) or req.uri_template or "unmatched",
        "registry": getattr(ctx, "registry_name", None),
        "repository": getattr(ctx, "repository", None),
        "status": int(str(resp.status).split(" ", 1)[0]),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "duration_ms": round(duration * 1000, 2),
        "client_ip": getattr(ctx, "client_ip", req.remote_addr),
        "subject": subject.name if subject is not None else None,
        "trace_id": getattr(ctx, "trace_id", None),
        # Which client made the request: operators tell a node's containerd from a CI's docker.
        "user_agent": (req.user_agent or "")[:USER_AGENT_LIMIT] or None,
    }
