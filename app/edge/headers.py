"""Security headers on every response (the Helmet set, adapted to an API)."""

from __future__ import annotations

HEADERS = {
    # Browsers ignore HSTS over plain HTTP, so it is safe to send always; behind the gateway's
    # TLS it pins clients to HTTPS.
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Only the console serves HTML (with its own policy); anything else may load nothing and be
    # framed by no one.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-site",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-DNS-Prefetch-Control": "off",
    "Origin-Agent-Cluster": "?1",
}


class SecurityHeaders:
    def process_response(self, req, resp, resource, req_succeeded) -> None:
        for name, value in HEADERS.items():
            if name == "Content-Security-Policy" and resp.get_header(name):
                continue  # a resource that serves HTML (app/console/) set its own
            resp.set_header(name, value)
        if req.path.startswith(("/api/", "/auth/")):
            resp.set_header("Cache-Control", resp.get_header("Cache-Control") or "no-store")
