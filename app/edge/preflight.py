"""A request decided from its line and headers alone, before its body is read.

waitress reads a whole request body (spooling it to disk) before the application runs, so an
anonymous 300 MiB POST cost 300 MiB of disk before its 401. Now, when a request's headers are in
and a large body follows (app/server/plain_http.py), the application first runs on the headers
alone: a *preflight*, the same request with an empty body and `berth.preflight` in its WSGI
environment. It goes through the same middleware and front doors as any request (the data
plane's router, the management gate), so there is one set of rules. Where a front door lets the
request through, it calls `allow(req)`, which ends the preflight there (`Passed`) and the body is
read; any other answer (401, 403, 404, 413, 429...) is the request's answer, sent at once, and
the connection is closed without reading the body.

A passed preflight is not a request of its own: it is not logged, audited or counted (the request
that follows is logged and audited; the rate limiter counts the preflight, and skips the request
it let through, marked `berth.preflighted`).
"""

from __future__ import annotations

import falcon

from app.spec.errors import RegistryError

SMALL_BODY = 1024 * 1024  # bodies up to this are read (into memory) before authorization
KEY = "berth.preflight"  # WSGI environ: a Preflight, present only on a preflight run
PREFLIGHTED = "berth.preflighted"  # WSGI environ: True on a request whose preflight passed


class Preflight:
    """What a preflight run decided: `passed` (with `body_limit`: at most that many bytes of
    body may follow), or else its response is the refusal."""

    __slots__ = ("passed", "body_limit")

    def __init__(self) -> None:
        self.passed = False
        self.body_limit: int | None = None


class Passed(Exception):
    """Raised by `allow` to end a preflight that a front door let through."""


def is_preflight(req: falcon.Request) -> bool:
    return KEY in req.env


def passed(req: falcon.Request) -> bool:
    """Whether this is a preflight that was let through (middleware skips those: not a request)."""
    marker = req.env.get(KEY)
    return marker is not None and marker.passed


def allow(req: falcon.Request, takes_body: bool = True) -> None:
    """Called by a front door once it has authorized the request: on a preflight, the body may
    now be read (raises Passed). A route that `takes_body` not (a small one at most) refuses a
    large body (413), and lets a chunked one, whose length is unknown, through with a limit of
    SMALL_BODY (the server answers 413 past it). On a request, nothing."""
    marker = req.env.get(KEY)
    if marker is None:
        return
    if not takes_body:
        if req.content_length is not None:
            raise RegistryError("PAYLOAD_TOO_LARGE", f"{req.method} {req.path[:200]} takes no request body this large")
        marker.body_limit = SMALL_BODY
    raise Passed()


def handle_passed(req: falcon.Request, resp: falcon.Response, ex: Passed, params) -> None:
    req.env[KEY].passed = True
    resp.status = falcon.HTTP_204


class PublicRoutesTakeNoBody:
    """Middleware, after the management gate: on a preflight, a route that no front door
    authorized (the token endpoint, health checks, the OpenAPI document) is public, and none of
    those takes a large body; refuse it (413) before anyone spools one. Unknown routes and
    methods are left to Falcon's own 404 and 405; the data plane's sink decides for itself."""

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or KEY not in req.env:
            return
        if getattr(resource, f"on_{req.method.lower()}", None) is None:
            return
        allow(req, takes_body=False)
