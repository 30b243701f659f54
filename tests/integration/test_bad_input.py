"""Bad input: malformed names, digests, ranges, manifests, content types, oversize bodies,
path traversal and garbage headers. Each gets the right OCI error, never a 500, and stores
nothing."""

from __future__ import annotations

import http.client
import json
import os
import random

import pytest

from tests.support.registry_client import OCI_MANIFEST, RegistryClient, sha256


def raw(server, method: str, path: str, body: bytes = b"", headers: dict | None = None, auth: bool = True):
    """Send exactly this request line: no client-side URL normalisation."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    h = {"Content-Length": str(len(body))}
    if auth:
        import base64

        h["Authorization"] = "Basic " + base64.b64encode(f"admin:{server.token}".encode()).decode()
    h.update(headers or {})
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in h.items():
        conn.putheader(k, v)
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def oci_code(status: int, headers: dict, body: bytes) -> str:
    assert status < 500, (status, body)
    assert headers.get("Content-Type", "").startswith("application/json"), (status, headers, body)
    return json.loads(body)["errors"][0]["code"]


def stored_files(server) -> set[str]:
    root = server.data_dir / "storage" / "blobs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.support.server import Server

    s = Server(tmp_path_factory.mktemp("bad") / "data", token="berth_bad_input_token").start()
    client = RegistryClient(s.url, s.session())
    s.image = client.push_image("default/good", "v1")  # the one thing that should be stored
    yield s
    s.stop()


@pytest.fixture
def unchanged(srv):
    """Assert that the test stored nothing: same blob files, same repositories."""
    client = RegistryClient(srv.url, srv.session())
    before_files = stored_files(srv)
    before_catalog = client.request("GET", "/v2/_catalog").json()
    yield
    assert stored_files(srv) == before_files
    assert client.request("GET", "/v2/_catalog").json() == before_catalog
    # No upload left behind either.
    assert not any((srv.data_dir / "storage" / "uploads").iterdir())


DIGEST = sha256(b"x")


@pytest.mark.parametrize(
    "path,code",
    [
        ("/v2/default/UPPER/manifests/v1", "NAME_INVALID"),
        ("/v2/default/a..b/manifests/v1", "NAME_INVALID"),
        ("/v2/default/../etc/manifests/v1", "NAME_INVALID"),
        ("/v2/default/%2e%2e/etc/manifests/v1", "NAME_INVALID"),
        ("/v2/default//double/manifests/v1", "NAME_INVALID"),
        ("/v2/default/-lead/manifests/v1", "NAME_INVALID"),
        ("/v2/default/trail-/tags/list", "NAME_INVALID"),
        ("/v2/default/" + "a" * 300 + "/tags/list", "NAME_INVALID"),
        ("/v2/default/sp%20ace/tags/list", "NAME_INVALID"),
        ("/v2/default/good/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd", "NOT_FOUND"),  # %2f decodes to '/'
        ("/v2/default/good/blobs/sha256:../../../etc/passwd", "NOT_FOUND"),
        ("/v2/default/good/blobs/sha256:" + "g" * 64, "BLOB_UNKNOWN"),
        ("/v2/default/good/blobs/sha256:" + "A" * 64, "BLOB_UNKNOWN"),
        ("/v2/default/good/blobs/sha256:abc", "BLOB_UNKNOWN"),
        ("/v2/default/good/blobs/md5:" + "a" * 32, "BLOB_UNKNOWN"),
        ("/v2/default/good/blobs/" + "a" * 64, "BLOB_UNKNOWN"),
        ("/v2/default/good/manifests/sha256:" + "z" * 64, "MANIFEST_UNKNOWN"),
        ("/v2/default/good/manifests/.hidden", "MANIFEST_UNKNOWN"),
        ("/v2/default/good/manifests/" + "t" * 129, "MANIFEST_UNKNOWN"),
        ("/v2/default/good/referrers/notadigest", "DIGEST_INVALID"),
        ("/v2/default/good/blobs/uploads/..%2f..%2fx", "NOT_FOUND"),
        ("/v2/default/good/blobs/uploads/..", "BLOB_UPLOAD_UNKNOWN"),
        ("/v2/default/good/nothing-here", "NOT_FOUND"),
        ("/v2/default/good/tags/list?n=-1", "PAGINATION_NUMBER_INVALID"),
        ("/v2/default/good/tags/list?n=abc", "PAGINATION_NUMBER_INVALID"),
    ],
)
def test_malformed_get_paths(srv, unchanged, path, code):
    status, headers, body = raw(srv, "GET", path)
    assert oci_code(status, headers, body) == code


@pytest.mark.parametrize(
    "method,path",
    [
        ("PUT", "/v2/default/../x/manifests/v1"),
        ("PUT", "/v2/default/good/manifests/sha256:../../x"),
        ("POST", "/v2/default/UP/blobs/uploads/"),
        ("POST", "/v2/default/good/blobs/uploads/?digest=sha256:nothex"),
        ("POST", "/v2/default/good/blobs/uploads/?mount=sha256:bad&from=default/good"),
        ("PATCH", "/v2/default/good/blobs/uploads/../../x"),
        ("DELETE", "/v2/default/good/blobs/sha256:" + "0" * 10),
        ("DELETE", "/v2/default/good/manifests/-bad"),
    ],
)
def test_malformed_writes_store_nothing(srv, unchanged, method, path):
    status, headers, body = raw(srv, method, path, body=b'{"schemaVersion": 2}', headers={"Content-Type": OCI_MANIFEST})
    assert 400 <= status < 500, (status, body)
    oci_code(status, headers, body)


@pytest.mark.parametrize(
    "body,content_type,code",
    [
        (b"not json", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"[]", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b'"string"', OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"\xff\xfe\x00garbage", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b'{"schemaVersion": 1}', OCI_MANIFEST, "MANIFEST_INVALID"),
        (b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'"}', OCI_MANIFEST, "MANIFEST_INVALID"),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:zz", "size": 1}, "layers": []}',
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
            + DIGEST.encode()
            + b'", "size": -1}, "layers": []}',
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
            + DIGEST.encode()
            + b'", "size": 1}, "layers": {}}',
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (b'{"schemaVersion": 2, "manifests": "nope"}', "application/vnd.oci.image.index.v1+json", "MANIFEST_INVALID"),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
            + DIGEST.encode()
            + b'", "size": 1}, "layers": []}',
            "application/vnd.oci.image.index.v1+json",
            "MANIFEST_INVALID",
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
            + DIGEST.encode()
            + b'", "size": 1}, "layers": []}',
            OCI_MANIFEST,
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
            + DIGEST.encode()
            + b'", "size": 1}, "layers": [],'
            b' "subject": "not a descriptor"}',
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (b"{}", "application/vnd.docker.distribution.manifest.v1+prettyjws", "MANIFEST_INVALID"),
        (b"{}", "garbage/garbage; charset=nonsense; ;;", "MANIFEST_INVALID"),
    ],
)
def test_bad_manifests(srv, unchanged, body, content_type, code):
    status, headers, resp = raw(
        srv, "PUT", "/v2/default/good/manifests/bad", body=body, headers={"Content-Type": content_type}
    )
    assert oci_code(status, headers, resp) == code
    status, _, _ = raw(srv, "GET", "/v2/default/good/manifests/bad")
    assert status == 404


def test_oversize_manifest_by_header_and_by_body(srv, unchanged):
    status, headers, body = raw(
        srv,
        "PUT",
        "/v2/default/good/manifests/big",
        body=b"{" + b" " * (4 * 1024 * 1024 + 10) + b"}",
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert status == 413 and oci_code(status, headers, body) == "MANIFEST_INVALID"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic " + "QQ=="},  # no colon
        {"Authorization": "Bearer"},
        {"Authorization": "Negotiate abc"},
        {"Authorization": "Basic " + "a" * 10000},
    ],
)
def test_garbage_authorization(srv, unchanged, headers):
    status, h, body = raw(srv, "GET", "/v2/", headers=headers, auth=False)
    assert status == 401 and oci_code(status, h, body) == "UNAUTHORIZED"


@pytest.mark.parametrize("content_range", ["garbage", "5-2", "0-", "-5", "0-10"])
def test_garbage_content_range(srv, content_range):
    client = RegistryClient(srv.url, srv.session())
    location = client.request("POST", "/v2/default/good/blobs/uploads/").headers["Location"]
    try:
        status, headers, body = raw(srv, "PATCH", location, body=b"abc", headers={"Content-Range": content_range})
        assert status == 416 and oci_code(status, headers, body) == "RANGE_INVALID"
        assert client.request("GET", location).headers["Range"] == "0-0"
    finally:
        client.request("DELETE", location)


def test_methods_not_supported(srv, unchanged):
    for method, path in (
        ("POST", "/v2/default/good/manifests/v1"),
        ("PUT", "/v2/default/good/tags/list"),
        ("PATCH", "/v2/_catalog"),
        ("DELETE", "/v2/"),
    ):
        status, headers, body = raw(srv, method, path)
        assert status == 405, (method, path, status)
        assert oci_code(status, headers, body) == "UNSUPPORTED"
        assert "Allow" in headers


def test_random_paths_never_500(srv, unchanged):
    rng = random.Random(1234)
    alphabet = "abcXYZ019./-_:%@~"
    segments = [
        "v2",
        "default",
        "good",
        "blobs",
        "uploads",
        "manifests",
        "tags",
        "list",
        "referrers",
        "_catalog",
        "sha256:" + "a" * 64,
        "..",
        ".",
        "",
        "%2e%2e",
        "%00",
        "v1",
    ]
    for _ in range(300):
        parts = [
            rng.choice(segments)
            if rng.random() < 0.7
            else "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
            for _ in range(rng.randint(1, 7))
        ]
        path = "/v2/" + "/".join(parts)
        method = rng.choice(["GET", "HEAD", "DELETE", "PATCH", "PUT", "POST"])
        status, headers, body = raw(srv, method, path, body=os.urandom(rng.randint(0, 64)))
        assert status < 500, (method, path, status, body)
        if method != "HEAD" and status >= 400:
            oci_code(status, headers, body)


def test_management_api_errors_are_problem_json(srv):
    import requests

    url = f"{srv.url}/api/v1/orgs/default/registries"
    auth = {"Authorization": f"Bearer {srv.token}"}
    cases = [
        (dict(data=b"not json", headers={**auth, "Content-Type": "application/json"}), 400),
        (dict(json=[1, 2], headers=auth), 400),
        (dict(json={"name": "UPPER"}, headers=auth), 400),
        (dict(json={"name": "a" * 64}, headers=auth), 400),
        (dict(json={"name": "-x"}, headers=auth), 400),
        (dict(json={"name": "v2"}, headers=auth), 400),
        (dict(json={"name": "ok-name", "visibility": "secret"}, headers=auth), 400),
        (dict(json={"name": 5}, headers=auth), 400),
        (dict(json={"name": "default"}, headers=auth), 409),
        (dict(json={"name": "x"}, headers={"Authorization": "Bearer wrong"}), 401),
        (dict(json={"name": "x"}), 401),
    ]
    for kwargs, status in cases:
        r = requests.post(url, timeout=10, **kwargs)
        assert r.status_code == status, (kwargs, r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == status and problem["detail"] and problem["title"]
    r = requests.get(f"{srv.url}/api/v1/orgs/nosuch/registries", headers=auth, timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    names = [x["name"] for x in requests.get(url, headers=auth, timeout=10).json()["registries"]]
    assert names == ["default"]
