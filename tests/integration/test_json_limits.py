"""Client-written JSON has a depth and a size limit everywhere it is read: manifests on `/v2`,
every `/api/v1` body, the OAuth2 form on `/auth/token`, pagination cursors, and image configs
shown by browse. Past a limit the client gets a 4xx naming it; nothing reaches a 500 (a deeply
nested body used to raise RecursionError inside the request)."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import requests

from tests.support.registry_client import OCI_MANIFEST, RegistryClient, sha256
from tests.support.server import Server

DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 KB: far past Python's recursion limit (1000)
MAX_BODY = 16 * 1024  # the fixture's BERTH_MAX_API_BODY_BYTES
DEEP_BODY = b"[" * 5000 + b"]" * 5000  # under it


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(
        tmp_path_factory.mktemp("json") / "data",
        token="berth_" + secrets.token_urlsafe(32),
        env={"BERTH_MAX_API_BODY_BYTES": str(MAX_BODY)},
    ).start()
    s.client = RegistryClient(s.url, s.session())
    s.image = s.client.push_image("default/app", "v1")
    s.api = {"Authorization": f"Bearer {s.token}"}
    yield s
    s.stop()


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def manifest_with(srv, **extra) -> bytes:
    _, _, manifest = srv.image
    return json.dumps({**manifest, **extra}).encode()


def problem(r: requests.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "application/problem+json"
    return r.json()["detail"]


def oci_error(r: requests.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    return r.json()["errors"][0]


def test_a_manifest_nested_a_hundred_thousand_deep_is_manifest_invalid_and_stores_nothing(srv):
    r = srv.client.push_manifest("default/app", "deep", b'{"schemaVersion": 2, "x": ' + DEEP + b"}")
    error = oci_error(r, 400)
    assert error["code"] == "MANIFEST_INVALID" and "deeper than 64 levels" in error["message"]
    assert srv.client.request("GET", "/v2/default/app/manifests/deep").status_code == 404


def test_a_manifest_nested_just_past_the_limit_is_refused_and_one_at_it_is_stored(srv):
    refused = srv.client.push_manifest("default/app", "deep", manifest_with(srv, x=nested(64)))
    assert oci_error(refused, 400)["code"] == "MANIFEST_INVALID"
    stored = srv.client.push_manifest("default/app", "at-limit", manifest_with(srv, x=nested(63)))  # 64 in all
    assert stored.status_code == 201, stored.text


def test_a_manifest_with_nan_or_infinity_is_manifest_invalid(srv):
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        body = manifest_with(srv)[:-1] + b', "x": ' + constant + b"}"
        error = oci_error(srv.client.push_manifest("default/app", "nan", body), 400)
        assert error["code"] == "MANIFEST_INVALID" and "not a JSON number" in error["message"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/api/v1/orgs/default/registries"),
        ("PATCH", "/api/v1/orgs/default/registries/default"),
        ("POST", "/api/v1/orgs/default/registries/default/credentials"),
        ("POST", "/api/v1/orgs/default/registries/default/gc"),
        ("PUT", "/api/v1/orgs/default/registries/default/retention"),
        ("POST", "/api/v1/orgs/default/registries/default/retention/preview"),
        ("PUT", "/api/v1/orgs/default/members/bob"),
        ("POST", "/api/v1/orgs/default/tokens"),
    ],
)
def test_every_management_body_nested_too_deep_is_a_400_problem(srv, method, path):
    r = requests.request(
        method,
        srv.url + path,
        data=DEEP_BODY,
        timeout=30,
        headers={**srv.api, "Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(8)},
    )
    assert "deeper than 64 levels" in problem(r, 400)


def test_a_management_body_past_the_size_limit_is_refused_with_413_before_it_is_parsed(srv):
    body = json.dumps({"name": "x" * MAX_BODY}).encode()
    r = requests.post(
        f"{srv.url}/api/v1/orgs/default/tokens",
        data=body,
        timeout=30,
        headers={**srv.api, "Content-Type": "application/json"},
    )
    assert f"{MAX_BODY}-byte limit" in problem(r, 413)
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_management_body_past_the_size_limit_is_refused_too(srv):
    chunks = iter([b'{"name": "', b"x" * MAX_BODY, b'"}'])  # no Content-Length: read up to the limit
    r = requests.post(
        f"{srv.url}/api/v1/orgs/default/tokens",
        data=chunks,
        timeout=30,
        headers={**srv.api, "Content-Type": "application/json"},
    )
    assert f"{MAX_BODY}-byte limit" in problem(r, 413)


def test_the_token_form_past_the_size_limit_is_a_413_oci_error(srv):
    form = {"grant_type": "password", "username": "admin", "password": "x" * MAX_BODY, "service": "registry"}
    r = requests.post(f"{srv.url}/auth/token", data=form, timeout=30)
    assert oci_error(r, 413)["code"] == "PAYLOAD_TOO_LARGE"
    ok = requests.post(
        f"{srv.url}/auth/token", timeout=30, data={"grant_type": "password", "username": "admin", "password": srv.token}
    )
    assert ok.status_code == 200, ok.text


def test_a_multipart_management_body_is_unsupported_not_parsed(srv):
    r = requests.post(f"{srv.url}/api/v1/orgs/default/tokens", files={"name": ("n", b"x")}, headers=srv.api, timeout=30)
    problem(r, 415)


def test_a_management_body_with_nan_is_a_400_problem(srv):
    r = requests.post(
        f"{srv.url}/api/v1/orgs/default/tokens",
        timeout=30,
        data=b'{"name": "n", "scope": "pull", "expires_in": NaN}',
        headers={**srv.api, "Content-Type": "application/json"},
    )
    assert "not a JSON number" in problem(r, 400)


def cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orgs/default/tokens",  # integer keys
        "/api/v1/orgs/default/audit",
        "/api/v1/orgs/default/members",  # string keys
        "/api/v1/orgs/default/registries",
        "/api/v1/orgs/default/registries/default/repositories",  # an in-memory list
        "/api/v1/orgs/default/registries/default/repositories/app/tags",
    ],
)
@pytest.mark.parametrize(
    "forged",
    [
        b"[" * 5000 + b"]" * 5000,
        b"99999999999999999999999",
        b'{"a": 1}',
        b"[1]",
        b"true",
        b"null",
        b'"\\u0000"',
        b'"\\ud800"',
        b"1" * 5000,
        b"NaN",
        b"\xff",
        b"1.5",
    ],
)
def test_a_forged_cursor_is_a_400_problem_on_every_list(srv, path, forged):
    r = requests.get(srv.url + path, params={"cursor": cursor(forged)}, headers=srv.api, timeout=30)
    assert "cursor" in problem(r, 400)


def test_a_cursor_the_server_issued_still_pages(srv):
    for name in ("a", "b"):
        assert requests.put(
            f"{srv.url}/api/v1/orgs/default/members/{name}", json={"role": "reader"}, headers=srv.api, timeout=30
        ).status_code in (200, 201)
    first = requests.get(f"{srv.url}/api/v1/orgs/default/members?limit=1", headers=srv.api, timeout=30).json()
    second = requests.get(
        f"{srv.url}/api/v1/orgs/default/members",
        headers=srv.api,
        timeout=30,
        params={"limit": 1, "cursor": first["next_cursor"]},
    ).json()
    assert second["members"] and second["members"] != first["members"]


def test_an_image_whose_config_is_nested_too_deep_is_browsed_without_its_preview(srv):
    config = b'{"os": "linux", "x": ' + DEEP[:20_000] + DEEP[-20_000:] + b"}"
    layer = b"deep-config-layer"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": srv.client.push_blob("default/cfg", config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": srv.client.push_blob("default/cfg", layer),
                "size": len(layer),
            }
        ],
    }
    body = json.dumps(manifest).encode()
    assert srv.client.push_manifest("default/cfg", "v1", body).status_code == 201
    r = requests.get(
        f"{srv.url}/api/v1/orgs/default/registries/default/repositories/cfg/manifests/{sha256(body)}",
        headers=srv.api,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"]["image"] is None


def test_the_depth_limit_is_a_setting(tmp_path):
    s = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env={"BERTH_MAX_JSON_DEPTH": "4"}).start()
    try:
        api = {"Authorization": f"Bearer {s.token}"}
        r = requests.put(f"{s.url}/api/v1/orgs/default/members/bob", json={"role": nested(4)}, headers=api, timeout=30)
        assert "deeper than 4 levels" in problem(r, 400)
        r = requests.put(f"{s.url}/api/v1/orgs/default/members/bob", json={"role": "reader"}, headers=api, timeout=30)
        assert r.status_code == 201, r.text
    finally:
        s.stop()
