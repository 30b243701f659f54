"""Security headers on every response; a resource's own Content-Security-Policy is kept; API and
token responses are not cached unless the resource says otherwise."""

from __future__ import annotations

from app.edge.headers import HEADERS, SecurityHeaders
from tests.support.tiny_app import tiny_app


class OwnPolicy:
    def on_get(self, req, resp, **params):
        resp.set_header("Content-Security-Policy", "default-src 'self'")
        resp.set_header("Cache-Control", "max-age=60")


def test_every_response_carries_the_whole_set_even_an_error():
    http = tiny_app(SecurityHeaders(), path="/v2/{rest:path}")
    for response in (http.simulate_get("/v2/x"), http.simulate_get("/nowhere/at/all")):
        assert {name: response.headers.get(name) for name in HEADERS} == HEADERS


def test_a_resource_that_sets_its_own_policy_keeps_it():
    response = tiny_app(SecurityHeaders(), resource=OwnPolicy()).simulate_get("/console/")
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"


def test_api_and_token_responses_are_not_stored_unless_the_resource_says_so():
    http = tiny_app(SecurityHeaders())
    assert http.simulate_get("/api/v1/orgs").headers["Cache-Control"] == "no-store"
    assert http.simulate_get("/auth/token").headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in http.simulate_get("/v2/").headers
    assert tiny_app(SecurityHeaders(), resource=OwnPolicy()).simulate_get("/api/v1/x").headers["Cache-Control"] == (
        "max-age=60"
    )
