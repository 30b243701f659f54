"""The first middleware: a request id, the real client address and scheme, HTTPS enforcement."""

from __future__ import annotations

import re
import time
import uuid

import falcon

from app.edge.proxies import ProxyTrust
from app.oci.errors import RegistryError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    def __init__(self, proxies: ProxyTrust, require_https: bool) -> None:
        self.proxies = proxies
        self.require_https = require_https

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        incoming = req.get_header("X-Request-ID") or ""
        req.context.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        resp.set_header("X-Request-ID", req.context.request_id)
        peer = self.proxies.peer(req)
        req.context.client_ip = peer.client_ip
        req.context.scheme = peer.scheme
        req.context.registry_header = peer.registry
        if self.require_https and peer.scheme != "https" and req.path not in ("/healthz", "/readyz"):
            if req.method in ("GET", "HEAD") and not req.path.startswith(("/v2", "/auth/")):
                raise falcon.HTTPPermanentRedirect(f"https://{req.netloc}{req.relative_uri}")
            # Registry clients do not follow redirects for writes or the token flow: refuse plainly.
            raise RegistryError("DENIED", f"HTTPS is required: use https://{req.netloc}", status=403)
