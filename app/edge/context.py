"""The first middleware: a request id, the real client address and scheme, HTTPS enforcement,
and no NUL in the path or query."""

from __future__ import annotations

import itertools
import os
import re
import time

import falcon

from app.edge.proxies import ProxyTrust
from app.spec.errors import RegistryError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")


class _RequestIds:
    """Unique request ids without a getrandom(2) call per request: 80 random bits drawn once per
    process (again after a fork, so `--workers` processes never share them) and a counter. Ids
    need to be unique, not secret."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(10).hex()
        self._counter = itertools.count(1)  # next() on it is atomic in CPython

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


_ids = _RequestIds()


class RequestContext:
    def __init__(self, proxies: ProxyTrust, require_https: bool) -> None:
        self.proxies = proxies
        self.require_https = require_https

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        incoming = req.get_header("X-Request-ID") or ""
        req.context.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else _ids.next()
        resp.set_header("X-Request-ID", req.context.request_id)
        if "\x00" in req.path or "%00" in req.query_string:
            # No name, reference, cursor or filter holds a NUL, and PostgreSQL refuses one in any
            # text it is sent: refused here, it never reaches a query (a 500 there).
            raise RegistryError(
                "NAME_INVALID" if req.path.startswith("/v2") else "INVALID",
                "a NUL character is not allowed in the path or query",
            )
        peer = self.proxies.peer(req)
        req.context.client_ip = peer.client_ip
        req.context.scheme = peer.scheme
        req.context.registry_header = peer.registry
        if self.require_https and peer.scheme != "https" and req.path not in ("/healthz", "/readyz"):
            if req.method in ("GET", "HEAD") and not req.path.startswith(("/v2", "/auth/")):
                raise falcon.HTTPPermanentRedirect(f"https://{req.netloc}{req.relative_uri}")
            # Registry clients do not follow redirects for writes or the token flow: refuse plainly.
            raise RegistryError("DENIED", f"HTTPS is required: use https://{req.netloc}", status=403)
