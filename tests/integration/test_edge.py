"""The gateway-facing edge against the real server: rate limits (in memory and shared through
the real Redis), proxy trust, HTTPS enforcement, security headers, CORS, request ids."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.components import IN_CI
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

OWNER = "berth_edge_owner_0123456789abcdef"


def start(tmp_path, name: str, **env) -> Server:
    return Server(tmp_path / name, token=OWNER, env={k.upper(): v for k, v in env.items()}).start()


def auth_get(server: Server, path: str, **kw) -> requests.Response:
    return requests.get(server.url + path, auth=("a", OWNER), timeout=20, **kw)


def test_rate_limit_holds_exactly_under_concurrency(tmp_path):
    server = start(tmp_path, "rl", berth_rate_limit="50/minute")
    try:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: auth_get(server, "/v2/"), range(80)))
        ok = [r for r in responses if r.status_code == 200]
        limited = [r for r in responses if r.status_code == 429]
        assert (len(ok), len(limited)) == (50, 30)
        r = limited[0]
        assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.headers["RateLimit-Limit"] == "50" and r.headers["RateLimit-Remaining"] == "0"
        assert {x.headers["RateLimit-Remaining"] for x in ok} == {str(n) for n in range(50)}
        api = requests.get(
            f"{server.url}/api/v1/orgs/default/registries", headers={"Authorization": f"Bearer {OWNER}"}, timeout=20
        )
        assert api.status_code == 429 and api.headers["Content-Type"] == "application/problem+json"
        assert api.json()["code"] == "TOOMANYREQUESTS"
        # Probes are never limited.
        assert requests.get(f"{server.url}/healthz", timeout=20).status_code == 200
    finally:
        server.stop()


def _redis_or_fail():
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    try:
        client.ping()
    except redis.ConnectionError:
        message = "Redis is not running on 127.0.0.1:6379 (start redis-server)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return client


def test_two_replicas_share_one_budget_through_redis(tmp_path):
    client = _redis_or_fail()
    client.flushdb()
    env = {"berth_rate_limit": "40/minute", "berth_redis_url": "redis://127.0.0.1:6379/15"}
    a = start(tmp_path, "a", **env)
    b = Server(tmp_path / "b", token=OWNER, env={k.upper(): v for k, v in env.items()}).start()
    try:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda i: auth_get(a if i % 2 else b, "/v2/"), range(60)))
        assert sum(r.status_code == 200 for r in responses) == 40
        # Separate budgets would have let all 60 through (30 per replica, 40 each).
        assert sum(r.status_code == 429 for r in responses) == 20
    finally:
        a.stop()
        b.stop()
        client.flushdb()


def test_route_overrides_and_allow_list(tmp_path):
    server = start(tmp_path, "routes", berth_rate_limit="1000/minute", berth_rate_limit_routes="/auth/token=3/minute")
    try:
        statuses = [requests.get(f"{server.url}/auth/token", timeout=20).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert auth_get(server, "/v2/").status_code == 200  # other routes keep the default budget
    finally:
        server.stop()
    server = start(tmp_path, "allow", berth_rate_limit="2/minute", berth_rate_limit_allow="127.0.0.0/8")
    try:
        assert all(auth_get(server, "/v2/").status_code == 200 for _ in range(5))
    finally:
        server.stop()


def test_forwarded_headers_are_believed_only_from_trusted_proxies(tmp_path):
    owner = {"Authorization": f"Bearer {OWNER}"}
    trusted = start(tmp_path, "trusted", berth_rate_limit="3/minute", berth_trusted_proxies="127.0.0.1/32")
    try:
        # Behind a trusted proxy each real client has its own budget.
        for ip in ("203.0.113.7", "203.0.113.8"):
            statuses = [
                auth_get(trusted, "/v2/", headers={"X-Forwarded-For": f"{ip}, 127.0.0.1"}).status_code for _ in range(4)
            ]
            assert statuses == [200, 200, 200, 429], ip
        r = auth_get(trusted, "/v2/", headers={"Forwarded": 'for="198.51.100.1";proto=https'})
        assert r.status_code == 200
        logs = trusted.logs()
        assert '"client_ip": "203.0.113.7"' in logs and '"client_ip": "198.51.100.1"' in logs
    finally:
        trusted.stop()
    gateway = start(tmp_path, "gateway", berth_trusted_proxies="127.0.0.1/32")
    try:
        # The gateway's registry header picks the registry.
        requests.post(f"{gateway.url}/api/v1/orgs/default/registries", json={"name": "gw"}, headers=owner, timeout=20)
        RegistryClient(gateway.url, gateway.session()).push_image("gw/app", "v1")
        r = auth_get(gateway, "/v2/app/tags/list", headers={"X-Berth-Registry": "gw"})
        assert r.status_code == 200 and r.json()["tags"] == ["v1"]
    finally:
        gateway.stop()

    untrusted = start(tmp_path, "untrusted", berth_rate_limit="3/minute", berth_trusted_proxies="10.0.0.0/8")
    try:
        # A spoofed header from an untrusted peer changes nothing: one budget for 127.0.0.1.
        statuses = [
            auth_get(untrusted, "/v2/", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        assert '"client_ip": "203.0.113.' not in untrusted.logs()
        assert '"client_ip": "127.0.0.1"' in untrusted.logs()
    finally:
        untrusted.stop()
    spoof = start(tmp_path, "spoof", berth_trusted_proxies="10.0.0.0/8")
    try:
        requests.post(f"{spoof.url}/api/v1/orgs/default/registries", json={"name": "gw"}, headers=owner, timeout=20)
        RegistryClient(spoof.url, spoof.session()).push_image("gw/app", "v1")
        r = auth_get(spoof, "/v2/app/tags/list", headers={"X-Berth-Registry": "gw"})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "NAME_INVALID"  # path form, no registry
    finally:
        spoof.stop()


def test_https_is_required_when_configured(tmp_path):
    server = start(tmp_path, "https", berth_require_https="true", berth_trusted_proxies="127.0.0.1/32")
    try:
        https = {"X-Forwarded-Proto": "https"}
        assert auth_get(server, "/v2/", headers=https).status_code == 200
        r = auth_get(server, "/v2/", headers={"X-Forwarded-Proto": "http"})
        assert r.status_code == 403 and "HTTPS is required" in r.json()["errors"][0]["message"]
        assert auth_get(server, "/v2/").status_code == 403  # plain HTTP straight to the pod
        r = requests.get(
            f"{server.url}/api/v1/orgs/default/registries?x=1",
            timeout=20,
            allow_redirects=False,
            headers={"X-Forwarded-Proto": "http", "Authorization": f"Bearer {OWNER}"},
        )
        assert r.status_code == 308
        assert r.headers["Location"] == f"https://{server.host}/api/v1/orgs/default/registries?x=1"
        assert requests.get(f"{server.url}/healthz", timeout=20).status_code == 200  # probes come over HTTP
        assert "max-age" in r.headers["Strict-Transport-Security"]
    finally:
        server.stop()


def test_security_headers_on_every_response(server):
    responses = [
        requests.get(f"{server.url}/v2/", timeout=20),  # 401
        requests.get(f"{server.url}/v2/", auth=("a", server.token), timeout=20),
        requests.get(
            f"{server.url}/api/v1/orgs/default/registries",
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=20,
        ),
        requests.get(f"{server.url}/nope", timeout=20),
    ]
    for r in responses:
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "max-age=" in r.headers["Strict-Transport-Security"]
        assert "Server" not in r.headers
    assert responses[2].headers["Cache-Control"] == "no-store"


def test_cors(tmp_path):
    server = start(
        tmp_path, "cors", berth_cors_origins="https://ui.example", berth_cors_credentials="https://ui.example"
    )
    try:
        origin = {"Origin": "https://ui.example"}
        RegistryClient(server.url, server.session()).push_image("default/app", "v1")
        r = auth_get(server, "/v2/default/app/manifests/v1", headers=origin)
        assert r.headers["Access-Control-Allow-Origin"] == "https://ui.example"
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        exposed = r.headers["Access-Control-Expose-Headers"]
        for name in ("Docker-Content-Digest", "Link", "Location", "Range", "X-Request-ID", "OCI-Tag"):
            assert name in exposed
        for path in ("/v2/default/app/manifests/v1", "/api/v1/orgs/default/registries"):
            pre = requests.options(
                server.url + path,
                timeout=20,
                headers={
                    **origin,
                    "Access-Control-Request-Method": "PUT",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert pre.status_code in (200, 204), (path, pre.status_code, pre.text)
            assert "GET" in pre.headers["Access-Control-Allow-Methods"]
            assert pre.headers["Access-Control-Allow-Headers"] == "authorization"
            assert pre.headers["Access-Control-Allow-Origin"] == "https://ui.example"
        other = auth_get(server, "/v2/", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        server.stop()


def test_request_ids(server):
    mine = "req-" + uuid.uuid4().hex
    r = requests.get(f"{server.url}/v2/", headers={"X-Request-ID": mine}, timeout=20)
    assert r.headers["X-Request-ID"] == mine
    assert r.json()["request_id"] == mine  # in the OCI error body
    r = requests.get(
        f"{server.url}/api/v1/orgs/default/registries", headers={"X-Request-ID": "bad id; <script>"}, timeout=20
    )
    generated = r.headers["X-Request-ID"]
    assert generated != "bad id; <script>" and len(generated) == 32
    assert r.json()["request_id"] == generated  # in the problem JSON
    r = requests.get(f"{server.url}/v2/", auth=("a", server.token), timeout=20)
    assert len(r.headers["X-Request-ID"]) == 32
    assert f'"request_id": "{mine}"' in server.logs()
