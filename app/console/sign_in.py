"""The console's sign-in: what the page needs to know (`GET /console/config.json`) and the
OpenID Connect code-for-token exchange (`POST /console/oidc/token`).

The browser runs authorization code + PKCE itself: it makes the verifier, sends its S256
challenge to the provider's authorization endpoint and keeps the verifier in sessionStorage.
Only the exchange passes through Berth, so the page's Content-Security-Policy stays
`connect-src 'self'` and the provider needs no CORS. Berth holds no client secret (the console
is a public client); it forwards the code and the verifier and hands back the access token,
which the page keeps in sessionStorage and sends as `Authorization: Bearer` to `/api/v1`.
Neither the token nor the code is logged here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import falcon
import requests

from app.console.assets import console_headers
from app.edge import media
from app.spec.errors import RegistryError

log = logging.getLogger("berth.console")

CONSOLE_PATH = "/console/"


@dataclass(frozen=True)
class OidcClient:
    authorization_url: str
    token_url: str
    client_id: str
    scope: str = "openid"
    timeout: float = 10.0


class ConsoleConfig:
    """`GET /console/config.json`: whether to offer OpenID Connect sign-in, and where."""

    def __init__(self, oidc: OidcClient | None) -> None:
        self.oidc = oidc

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        console_headers(resp)
        resp.set_header("Cache-Control", "no-store")
        oidc = None
        if self.oidc is not None:
            oidc = {
                "authorization_endpoint": self.oidc.authorization_url,
                "client_id": self.oidc.client_id,
                "scope": self.oidc.scope,
                "token_exchange": "/console/oidc/token",
            }
        resp.media = {"oidc": oidc}


class TokenExchange:
    """`POST /console/oidc/token {"code", "code_verifier", "redirect_uri"}` -> the provider's
    access token. The redirect URI must be the console's own (the provider checks it matches
    the authorization request)."""

    def __init__(self, oidc: OidcClient | None) -> None:
        self.oidc = oidc

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        console_headers(resp)
        resp.set_header("Cache-Control", "no-store")
        if self.oidc is None:
            raise RegistryError("NOT_FOUND", "OpenID Connect sign-in is not configured (BERTH_OIDC_*)")
        body = media.object_of(
            req,
            example='{"code": "...", "code_verifier": "...", "redirect_uri": "https://registry.example.com/console/"}',
            allowed={"code", "code_verifier", "redirect_uri"},
        )
        code = media.string_field(body, "code", required=True, max_length=2048)
        verifier = media.string_field(body, "code_verifier", required=True, max_length=128)
        redirect_uri = media.string_field(body, "redirect_uri", required=True, max_length=2048)
        if urlsplit(redirect_uri).path != CONSOLE_PATH:
            raise RegistryError(
                "INVALID", f"redirect_uri must be the console's own ({CONSOLE_PATH})", field="redirect_uri"
            )
        resp.media = self._exchange(self.oidc, code, verifier, redirect_uri)

    @staticmethod
    def _exchange(oidc: OidcClient, code: str, verifier: str, redirect_uri: str) -> dict:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": oidc.client_id,
        }
        try:
            answer = requests.post(
                oidc.token_url,
                data=form,
                timeout=oidc.timeout,
                headers={"Accept": "application/json"},
                allow_redirects=False,
            )
        except requests.RequestException as e:
            log.warning("the identity provider's token endpoint failed: %s", type(e).__name__)
            raise RegistryError("UNAVAILABLE", "the identity provider cannot be reached right now") from None
        try:
            doc = answer.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = {}
        token = doc.get("access_token")
        if answer.status_code != 200 or not isinstance(token, str) or not token:
            error = doc.get("error")
            reason = error if isinstance(error, str) else f"HTTP {answer.status_code}"
            raise RegistryError("UNAUTHORIZED", f"the identity provider refused the sign-in ({reason[:100]})")
        expires_in = doc.get("expires_in")
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in if isinstance(expires_in, int) else None,
        }
