"""The rate limiter: a budget per client address, overridden by path prefix, with allow-listed
networks and health checks never limited, and the budget reported in RateLimit-* headers."""

from __future__ import annotations

import pytest

from app.edge import preflight
from app.edge.proxies import parse_networks
from app.edge.rate_limit import RateLimiter, parse_routes
from tests.support.tiny_app import tiny_app


class ClientIp:
    """Stands in for RequestContext: the client address the limiter keys on."""

    def process_request(self, req, resp):
        req.context.client_ip = req.get_header("X-Test-Client") or "198.51.100.1"


def client(limiter: RateLimiter):
    return tiny_app(ClientIp(), limiter)


def test_route_overrides_are_ordered_longest_prefix_first():
    routes = parse_routes("/v2=2000/10 minutes; /v2/token=5/minute ;")
    assert [(prefix, item.amount) for prefix, item in routes] == [("/v2/token", 5), ("/v2", 2000)]


@pytest.mark.parametrize("bad", ["v2=5/minute", "/v2", "/v2=lots"])
def test_a_malformed_route_override_stops_the_process(bad):
    with pytest.raises(SystemExit):
        parse_routes(bad)


def test_the_budget_is_reported_and_the_request_past_it_gets_429_with_retry_after():
    http = client(RateLimiter("2/minute"))
    first = http.simulate_get("/v2/")
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("2", "1")
    assert first.headers["RateLimit-Policy"] == "2;w=60"
    assert http.simulate_get("/v2/").status_code == 200
    refused = http.simulate_get("/v2/")
    assert refused.status_code == 429
    assert refused.json["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(refused.headers["Retry-After"]) >= 1


def test_each_client_address_has_its_own_budget():
    http = client(RateLimiter("1/minute"))
    assert http.simulate_get("/v2/", headers={"X-Test-Client": "198.51.100.1"}).status_code == 200
    assert http.simulate_get("/v2/", headers={"X-Test-Client": "198.51.100.2"}).status_code == 200
    assert http.simulate_get("/v2/", headers={"X-Test-Client": "198.51.100.1"}).status_code == 429


def test_the_longest_matching_prefix_sets_the_budget_and_each_prefix_counts_apart():
    http = client(RateLimiter("100/minute", routes="/auth=50/minute;/auth/token=1/minute"))
    assert http.simulate_get("/auth/token").headers["RateLimit-Limit"] == "1"
    assert http.simulate_get("/auth/token").status_code == 429
    assert http.simulate_get("/auth/other").headers["RateLimit-Limit"] == "50"
    assert http.simulate_get("/v2/").status_code == 200


def test_allow_listed_networks_health_checks_and_options_are_never_limited():
    http = client(RateLimiter("1/minute", allow=parse_networks("192.0.2.0/24")))
    for _ in range(3):
        assert http.simulate_get("/v2/", headers={"X-Test-Client": "192.0.2.9"}).status_code == 200
        assert http.simulate_get("/healthz").status_code == 200
        assert http.simulate_options("/v2/").status_code == 200
    assert "RateLimit-Limit" not in http.simulate_get("/healthz").headers


def test_a_request_whose_preflight_was_counted_is_not_counted_again():
    http = client(RateLimiter("1/minute"))
    assert http.simulate_get("/v2/").status_code == 200
    let_through = http.simulate_get("/v2/", extras={preflight.PREFLIGHTED: True})
    assert let_through.status_code == 200
