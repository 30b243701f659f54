"""Rendering errors in each plane's own format: the OCI envelope on `/v2`, problem JSON on
`/api`. Nothing escapes as a traceback or an HTML page."""

from __future__ import annotations

import json
import logging

import falcon
import peewee as pw

from app.auth.identity import challenge
from app.db.setup import is_cancelled
from app.spec.errors import CODES, RegistryError
from app.storage.capacity import is_storage_full

log = logging.getLogger("berth.errors")

_FALCON_STATUS_CODES = {
    400: "INVALID",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NOT_FOUND",
    405: "UNSUPPORTED",
    411: "SIZE_INVALID",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED",
    416: "RANGE_INVALID",
    429: "TOOMANYREQUESTS",
}
API_CHALLENGE = 'Bearer realm="Berth API"'
PROBLEM_BASE = "https://berth.dev/problems/"


def problem_type(code: str) -> str:
    """The stable `type` URI of a problem: one per error code (docs/api.md lists them)."""
    return PROBLEM_BASE + code.lower().replace("_", "-")


TOKEN_ENDPOINT_CHALLENGE = 'Basic realm="Berth Registry"'


def render(req: falcon.Request, resp: falcon.Response, error: RegistryError) -> None:
    resp.status = error.status
    for name, value in error.headers.items():
        resp.set_header(name, value)
    if req.path.startswith(("/api/", "/console/")):  # the console's sign-in answers problems too
        body = {
            "type": problem_type(error.code),
            "title": CODES.get(error.code, (0, error.code))[1],
            "status": error.status,
            "detail": error.message,
            "code": error.code,
            "request_id": getattr(req.context, "request_id", None),
        }
        if error.field:
            body["invalid_params"] = [{"name": error.field, "reason": error.message}]
        resp.content_type = "application/problem+json"
        if error.status == 401:
            resp.set_header("WWW-Authenticate", API_CHALLENGE)
    else:
        body = {**error.envelope(), "request_id": getattr(req.context, "request_id", None)}
        resp.content_type = "application/json"
        resp.set_header("Docker-Distribution-API-Version", "registry/2.0")
        if error.status == 401 and "WWW-Authenticate" not in error.headers:
            if req.path.startswith("/auth/"):
                resp.set_header("WWW-Authenticate", TOKEN_ENDPOINT_CHALLENGE)
            else:
                resp.set_header("WWW-Authenticate", challenge(req))
    resp.data = json.dumps(body).encode()
    resp.stream = None  # the server has read the request body whole (or refused it unread): nothing to drain


def handle_registry_error(req, resp, ex: RegistryError, params) -> None:
    render(req, resp, ex)


def handle_http_error(req, resp, ex: falcon.HTTPError, params) -> None:
    status = int(ex.status_code)
    code = _FALCON_STATUS_CODES.get(status, "INVALID" if status < 500 else "UNSUPPORTED")
    message = ex.description or ex.title or "request failed"
    headers = dict(ex.headers or {})
    render(req, resp, RegistryError(code, message, status=status, headers=headers))


def handle_unexpected(req, resp, ex: Exception, params) -> None:
    if is_storage_full(ex):
        # The disk under the blob store, the spool or the database: an answer the client can act
        # on (what it sent is not kept), and one warning rather than a traceback per request.
        log.warning("storage full on %s %s: %s", req.method, req.path, ex)
        render(req, resp, RegistryError("STORAGE_FULL"))
        return
    if (type(ex).__name__ == "OperationalError" and "database is locked" in str(ex)) or (
        isinstance(ex, pw.OperationalError) and is_cancelled(ex)
    ):
        # SQLite's write lock held past the wait (another process's long write, such as a
        # VACUUM), or a PostgreSQL statement of the event loop cancelled past its patience (a
        # lock held by a long transaction elsewhere): retryable, like a turn not granted
        # (app/db/writer.py).
        log.warning("database busy on %s %s: %s", req.method, req.path, ex)
        render(req, resp, RegistryError("UNAVAILABLE", "the database is busy; retry", headers={"Retry-After": "1"}))
        return
    log.exception("unhandled error on %s %s", req.method, req.path)
    render(req, resp, RegistryError("UNKNOWN", "internal error; see the server log"))
