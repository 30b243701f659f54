"""A stand-in platform identity provider: real keys, real signatures, a real JWKS endpoint on
loopback. Only the issuing side is ours; Berth fetches and verifies exactly as in production.

It also serves OpenID Connect authorization code + PKCE for the console's sign-in:
`/authorize` signs in `provider.user` at once (no login form) and redirects back with a code;
`/token` trades the code for an access token only with the verifier whose S256 challenge the
authorization request carried, the same redirect URI and the same client id."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.example.test"
AUDIENCE = "berth"
CLIENT_ID = "berth-console"


@dataclass
class Grant:
    """An authorization code's binding: who signed in and what the exchange must repeat."""

    challenge: str
    redirect_uri: str
    client_id: str
    sub: str
    claims: dict = field(default_factory=dict)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class IdentityProvider:
    def __init__(self) -> None:
        self.keys: dict[str, object] = {
            "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec-1": ec.generate_private_key(ec.SECP256R1()),
        }
        self.fetches = 0
        self.hang = False
        # Who /authorize signs in, with which extra claims (e.g. {"orgs": {"default": "owner"}}).
        self.user = "alice"
        self.user_claims: dict = {}
        self.grants: dict[str, Grant] = {}
        self.exchanges: list[dict] = []  # each /token request's form, for tests to inspect
        self.authorizations: list[dict] = []  # each /authorize request's query (its state, ...)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if urlsplit(self.path).path == "/authorize":
                    return provider._authorize(self)
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

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.exchanges.append(form)
                status, body = provider._token(form) if urlsplit(self.path).path == "/token" else (404, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def env(self) -> dict:
        return {"BERTH_OIDC_JWKS_URL": self.jwks_url, "BERTH_OIDC_ISSUER": ISSUER, "BERTH_OIDC_AUDIENCE": AUDIENCE}

    def console_env(self) -> dict:
        """env() plus the endpoints the console's sign-in uses."""
        return {
            **self.env(),
            "BERTH_OIDC_AUTHORIZATION_URL": f"{self.url}/authorize",
            "BERTH_OIDC_TOKEN_URL": f"{self.url}/token",
            "BERTH_OIDC_CLIENT_ID": CLIENT_ID,
        }

    def _authorize(self, handler: BaseHTTPRequestHandler) -> None:
        q = {k: v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        self.authorizations.append(q)
        ok = (
            q.get("response_type") == "code"
            and q.get("code_challenge_method") == "S256"
            and q.get("code_challenge")
            and q.get("redirect_uri")
            and q.get("state")
        )
        if not ok:
            handler.send_response(400)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            q["code_challenge"], q["redirect_uri"], q.get("client_id", ""), self.user, dict(self.user_claims)
        )
        handler.send_response(302)
        handler.send_header("Location", f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _token(self, form: dict) -> tuple[int, dict]:
        grant = self.grants.pop(form.get("code", ""), None)  # a code is good once
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or s256(form.get("code_verifier", "")) != grant.challenge
            or form.get("redirect_uri") != grant.redirect_uri
            or form.get("client_id") != grant.client_id
        ):
            return 400, {"error": "invalid_grant"}
        return 200, {"access_token": self.token(grant.sub, **grant.claims), "token_type": "Bearer", "expires_in": 300}

    def jwks(self) -> dict:
        keys = []
        for kid, key in self.keys.items():
            algo = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algo.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256" if kid.startswith("rsa") else "ES256"})
        return {"keys": keys}

    def add_key(self, kid: str) -> None:
        self.keys[kid] = (
            ec.generate_private_key(ec.SECP256R1())
            if kid.startswith("ec")
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )

    def token(self, sub: str, kid: str = "rsa-1", lifetime: int = 300, header_kid: str | None = None, **claims) -> str:
        """A token signed with key `kid`; `header_kid` names another key in its header (one the
        JWKS may not have)."""
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now, "exp": now + lifetime, **claims}
        alg = "RS256" if kid.startswith("rsa") else "ES256"
        return jwt.encode(body, self.keys[kid], algorithm=alg, headers={"kid": header_kid or kid})

    def stop(self) -> None:
        self.hang = False
        self.httpd.shutdown()
