"""The first middleware: a request id (the client's if well-formed), the real client address and
scheme, HTTPS enforced (a redirect for browsers, 403 for registry clients), no NUL in the path."""

from __future__ import annotations

import pytest

from app.edge.context import RequestContext
from app.edge.proxies import ProxyTrust, parse_networks
from tests.support.tiny_app import tiny_app


def client(require_https: bool = False, proxies: str = "10.0.0.0/8"):
    return tiny_app(RequestContext(ProxyTrust(parse_networks(proxies)), require_https))


def test_a_well_formed_client_request_id_is_kept_and_echoed():
    response = client().simulate_get("/v2/", headers={"X-Request-ID": "abc-123.x:y"})
    assert response.headers["X-Request-ID"] == response.json["request_id"] == "abc-123.x:y"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 129, "a\nb"])
def test_a_malformed_request_id_is_replaced_by_a_fresh_unique_one(incoming):
    http = client()
    ids = {http.simulate_get("/v2/", headers={"X-Request-ID": incoming}).headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and incoming not in ids


def test_the_client_address_and_scheme_come_from_a_trusted_proxy_only():
    forwarded = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    via_proxy = client().simulate_get("/v2/", headers=forwarded, remote_addr="10.0.0.2").json
    direct = client().simulate_get("/v2/", headers=forwarded, remote_addr="203.0.113.9").json
    assert (via_proxy["client_ip"], via_proxy["scheme"]) == ("198.51.100.7", "https")
    assert (direct["client_ip"], direct["scheme"]) == ("203.0.113.9", "http")


@pytest.mark.parametrize(
    ("path", "query", "code"), [("/v2/a\x00b/tags/list", "", "NAME_INVALID"), ("/api/v1/orgs", "q=%00", "INVALID")]
)
def test_a_nul_in_the_path_or_query_is_refused_in_the_planes_own_format(path, query, code):
    response = client().simulate_get(path, query_string=query)
    assert response.status_code == 400
    assert code in response.text


def test_with_https_required_a_browser_get_is_redirected_to_https():
    response = client(require_https=True).simulate_get("/console/", query_string="a=1", host="berth.example")
    assert response.status_code == 308
    assert response.headers["Location"] == "https://berth.example/console/?a=1"


@pytest.mark.parametrize(("method", "path"), [("GET", "/v2/"), ("POST", "/api/v1/orgs"), ("GET", "/auth/token")])
def test_with_https_required_registry_clients_and_writes_are_refused_plainly(method, path):
    response = client(require_https=True).simulate_request(method, path)
    assert response.status_code == 403


def test_with_https_required_health_checks_and_https_through_the_proxy_pass():
    http = client(require_https=True)
    assert http.simulate_get("/healthz").status_code == 200
    proxied = http.simulate_post("/v2/x", headers={"X-Forwarded-Proto": "https"}, remote_addr="10.0.0.2")
    assert proxied.status_code == 200
