"""Rate limiting per client address with the `limits` library.

The default budget is the product page's: 500 requests per 10 minutes per IP
(`BERTH_RATE_LIMIT`). `BERTH_RATE_LIMIT_ROUTES` overrides it by path prefix
(`/auth/token=60/minute;/v2=2000/10 minutes`; the longest matching prefix wins) and
`BERTH_RATE_LIMIT_ALLOW` lists CIDRs that are never limited. Counters live in memory (a table
the `--workers` processes share, app/counters/windows.py), or in Redis when `BERTH_REDIS_URL` is
set, so that replicas share one budget (app/counters/: in the memory table while Redis cannot be
reached).
"""

from __future__ import annotations

import math
import time

import falcon
import limits
from limits.strategies import SlidingWindowCounterRateLimiter

from app.counters import Counters
from app.edge import preflight
from app.edge.proxies import in_networks
from app.spec.errors import RegistryError

EXEMPT_PATHS = ("/healthz", "/readyz")


def parse_routes(value: str) -> list[tuple[str, limits.RateLimitItem]]:
    routes = []
    for item in (v.strip() for v in value.split(";")):
        if not item:
            continue
        prefix, sep, rate = item.partition("=")
        if not sep or not prefix.startswith("/"):
            raise SystemExit(f"BERTH_RATE_LIMIT_ROUTES: {item!r} is not '/prefix=<rate>'")
        routes.append((prefix.strip(), _parse(rate.strip())))
    return sorted(routes, key=lambda r: -len(r[0]))


def _parse(rate: str) -> limits.RateLimitItem:
    try:
        return limits.parse(rate)
    except ValueError:
        raise SystemExit(f"{rate!r} is not a rate such as '500/10 minutes'") from None


class RateLimiter:
    def __init__(self, default: str, routes: str = "", allow: tuple = (), counters: Counters | None = None) -> None:
        self.default = _parse(default)
        self.routes = parse_routes(routes)
        self.allow = allow
        # A sliding window counter: two counters per client and window, weighted by how far the
        # current window has run. O(1) time and memory per hit, unlike a moving window, which
        # keeps (and scans) a timestamp per request allowed: 500 per address by default, but
        # millions under a generous limit.
        self.limiter = (counters or Counters()).limiter(SlidingWindowCounterRateLimiter)

    def _item(self, path: str) -> tuple[str, limits.RateLimitItem]:
        for prefix, item in self.routes:
            if path.startswith(prefix):
                return prefix, item
        return "*", self.default

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in EXEMPT_PATHS or req.method == "OPTIONS":
            return
        if req.env.get(preflight.PREFLIGHTED):  # counted once already: its preflight was
            return
        client = req.context.client_ip
        if self.allow and in_networks(client, self.allow):
            return
        scope, item = self._item(req.path)
        allowed, stats = self.limiter.hit_with_stats(item, "berth-requests", scope, client)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
        }
        if not allowed:
            raise RegistryError(
                "TOOMANYREQUESTS",
                f"rate limit of {item} exceeded; retry in {max(reset, 1)} s",
                headers={**headers, "Retry-After": str(max(reset, 1))},
            )
        req.context.rate_limit_headers = headers

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        for name, value in getattr(req.context, "rate_limit_headers", {}).items():
            resp.set_header(name, value)
