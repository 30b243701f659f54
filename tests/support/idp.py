"""A stand-in platform identity provider: real keys, real signatures, a real JWKS endpoint on
loopback. Only the issuing side is ours; Berth fetches and verifies exactly as in production."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.example.test"
AUDIENCE = "berth"


class IdentityProvider:
    def __init__(self) -> None:
        self.keys: dict[str, object] = {
            "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec-1": ec.generate_private_key(ec.SECP256R1()),
        }
        self.fetches = 0
        self.hang = False
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                provider.fetches += 1
                # hang: accept the request and say nothing until the switch is turned off (at most 60 s)
                deadline = time.monotonic() + 60
                while provider.hang and time.monotonic() < deadline:
                    time.sleep(0.05)
                body = json.dumps(provider.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    def env(self) -> dict:
        return {"BERTH_OIDC_JWKS_URL": self.jwks_url, "BERTH_OIDC_ISSUER": ISSUER, "BERTH_OIDC_AUDIENCE": AUDIENCE}

    def jwks(self) -> dict:
        keys = []
        for kid, key in self.keys.items():
            algo = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algo.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256" if kid.startswith("rsa") else "ES256"})
        return {"keys": keys}

    def add_key(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1()) if kid.startswith("ec") else \
            rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, sub: str, kid: str = "rsa-1", lifetime: int = 300, header_kid: str | None = None,
              **claims) -> str:
        """A token signed with key `kid`; `header_kid` names another key in its header (one the
        JWKS may not have)."""
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now, "exp": now + lifetime, **claims}
        alg = "RS256" if kid.startswith("rsa") else "ES256"
        return jwt.encode(body, self.keys[kid], algorithm=alg, headers={"kid": header_kid or kid})

    def stop(self) -> None:
        self.hang = False
        self.httpd.shutdown()
