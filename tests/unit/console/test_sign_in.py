"""The console's sign-in: its configuration, and the code-for-token exchange forwarded to a real
token endpoint on loopback (tests/support/idp.py), which checks the PKCE verifier, the redirect
URI and the client id exactly as a provider does."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.console.sign_in import ConsoleConfig, OidcClient, TokenExchange
from tests.support.idp import CLIENT_ID, IdentityProvider, s256
from tests.support.tiny_app import tiny_app

REDIRECT = "https://registry.example.com/console/"
VERIFIER = "v" * 43


@pytest.fixture(scope="module")
def provider():
    idp = IdentityProvider()
    yield idp
    idp.stop()


def oidc_of(provider: IdentityProvider) -> OidcClient:
    return OidcClient(f"{provider.url}/authorize", f"{provider.url}/token", CLIENT_ID, timeout=5)


def code_from(provider: IdentityProvider, redirect_uri: str = REDIRECT) -> str:
    """Signs in at the provider as the browser does and returns the code it redirects back with."""
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        "state": "s1",
    }
    answer = requests.get(f"{provider.url}/authorize", params=query, allow_redirects=False, timeout=5)
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def exchange(oidc: OidcClient | None, body: dict):
    http = tiny_app()
    http.app.add_route("/console/oidc/token", TokenExchange(oidc))
    return http.simulate_post("/console/oidc/token", json=body)


def test_the_config_offers_oidc_only_when_configured(provider):
    http = tiny_app()
    http.app.add_route("/console/config.json", ConsoleConfig(oidc_of(provider)))
    http.app.add_route("/console/none.json", ConsoleConfig(None))
    offered = http.simulate_get("/console/config.json")
    assert offered.json["oidc"] == {
        "authorization_endpoint": f"{provider.url}/authorize",
        "client_id": CLIENT_ID,
        "scope": "openid",
        "token_exchange": "/console/oidc/token",
    }
    assert offered.headers["Cache-Control"] == "no-store"
    assert http.simulate_get("/console/none.json").json == {"oidc": None}


def test_a_code_and_its_verifier_are_exchanged_for_the_providers_access_token(provider):
    response = exchange(
        oidc_of(provider), {"code": code_from(provider), "code_verifier": VERIFIER, "redirect_uri": REDIRECT}
    )
    assert response.status_code == 200
    assert (response.json["token_type"], response.json["expires_in"]) == ("Bearer", 300)
    assert response.json["access_token"].count(".") == 2
    assert response.headers["Cache-Control"] == "no-store"
    assert provider.exchanges[-1]["client_id"] == CLIENT_ID


def test_a_wrong_verifier_is_the_providers_refusal_as_401_naming_its_error(provider):
    body = {"code": code_from(provider), "code_verifier": "w" * 43, "redirect_uri": REDIRECT}
    response = exchange(oidc_of(provider), body)
    assert (response.status_code, response.json["code"]) == (401, "UNAUTHORIZED")
    assert "invalid_grant" in response.json["detail"]


def test_a_redirect_uri_that_is_not_the_consoles_is_refused_before_the_provider_is_asked(provider):
    asked = len(provider.exchanges)
    body = {"code": "c", "code_verifier": VERIFIER, "redirect_uri": "https://evil.example/steal"}
    response = exchange(oidc_of(provider), body)
    assert (response.status_code, response.json["invalid_params"][0]["name"]) == (400, "redirect_uri")
    assert len(provider.exchanges) == asked


@pytest.mark.parametrize(
    "body",
    [{}, {"code": "c", "code_verifier": VERIFIER}, {"code": "c", "code_verifier": "x" * 129, "redirect_uri": REDIRECT}],
)
def test_a_missing_or_oversized_field_is_invalid(provider, body):
    assert exchange(oidc_of(provider), body).status_code == 400


def test_without_oidc_configured_the_exchange_is_not_found():
    assert exchange(None, {"code": "c", "code_verifier": VERIFIER, "redirect_uri": REDIRECT}).status_code == 404


def test_an_unreachable_provider_is_503_not_a_500():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    oidc = OidcClient("http://127.0.0.1/authorize", f"http://127.0.0.1:{port}/token", CLIENT_ID, timeout=2)
    response = exchange(oidc, {"code": "c", "code_verifier": VERIFIER, "redirect_uri": REDIRECT})
    assert (response.status_code, response.json["code"]) == (503, "UNAVAILABLE")


def test_an_answer_without_a_token_or_an_error_name_is_refused_with_its_http_status(provider):
    oidc = OidcClient(f"{provider.url}/authorize", f"{provider.url}/not-the-token-endpoint", CLIENT_ID, timeout=5)
    response = exchange(oidc, {"code": "c", "code_verifier": VERIFIER, "redirect_uri": REDIRECT})
    assert (response.status_code, response.json["code"]) == (401, "UNAUTHORIZED")
    assert "HTTP 404" in response.json["detail"]


class ErrorWithAToken(BaseHTTPRequestHandler):
    """A token endpoint that fails (500) yet puts an access_token in its answer."""

    def do_POST(self):  # noqa: N802
        body = json.dumps({"access_token": "not-to-be-trusted"}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_token_in_a_failed_answer_is_not_handed_to_the_browser():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ErrorWithAToken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        oidc = OidcClient(f"{url}/authorize", f"{url}/token", CLIENT_ID, timeout=5)
        response = exchange(oidc, {"code": "c", "code_verifier": VERIFIER, "redirect_uri": REDIRECT})
    finally:
        server.shutdown()
        server.server_close()
    assert (response.status_code, response.json["code"]) == (401, "UNAUTHORIZED")
    assert "not-to-be-trusted" not in response.text and "HTTP 500" in response.json["detail"]
