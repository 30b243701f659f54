"""The OCI Distribution Spec v1.1, endpoint by endpoint, against the real server.

Each test walks one part of spec.md (opencontainers/distribution-spec): the success path, the
headers the spec requires, and the error codes it names.
"""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest
import requests

from tests.support.management import Api
from tests.support.registry_client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    sha256,
    sha512,
)


@pytest.fixture
def client(server) -> RegistryClient:
    return RegistryClient(server.url, server.session())


@pytest.fixture
def anon(server) -> RegistryClient:
    return RegistryClient(server.url, server.session(token=None))


def error_code(r: requests.Response) -> str:
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return r.json()["errors"][0]["code"]


def create_registry(server, name: str | None = None, visibility: str = "private") -> str:
    name = name or f"r{secrets.token_hex(4)}"
    r = requests.post(
        f"{server.url}/api/v1/orgs/default/registries",
        json={"name": name, "visibility": visibility},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    return name


# -- /v2/ -------------------------------------------------------------------------------------


def test_base_endpoint_requires_credentials_and_accepts_the_token(server, client, anon):
    r = anon.request("GET", "/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == (f'Bearer realm="http://{server.host}/auth/token",service="{server.host}"')
    assert error_code(r) == "UNAUTHORIZED"
    r = client.request("GET", "/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    bad = RegistryClient(server.url, server.session(token="berth_wrong"))
    r = bad.request("GET", "/v2/")
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"


def test_any_username_works_with_the_token(server):
    s = requests.Session()
    s.auth = ("someone-else", server.token)
    assert s.get(f"{server.url}/v2/", timeout=10).status_code == 200


# -- blobs: push -------------------------------------------------------------------------------


def test_monolithic_post_then_put(client, repo_name):
    data = secrets.token_bytes(5000)
    r = client.request("POST", f"/v2/{repo_name}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["Location"]
    assert location.startswith(f"/v2/{repo_name}/blobs/uploads/")
    assert r.headers["Docker-Upload-UUID"]
    r = client.request(
        "PUT",
        location,
        params={"digest": sha256(data)},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo_name}/blobs/{sha256(data)}"
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    r = client.request("GET", f"/v2/{repo_name}/blobs/{sha256(data)}")
    assert r.status_code == 200 and r.content == data


def test_single_post_with_digest(client, repo_name):
    data = b"single post"
    r = client.request(
        "POST",
        f"/v2/{repo_name}/blobs/uploads/",
        params={"digest": sha256(data)},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    assert client.request("HEAD", f"/v2/{repo_name}/blobs/{sha256(data)}").status_code == 200


def test_chunked_upload_with_status_and_out_of_order_chunk(client, repo_name):
    data = secrets.token_bytes(300_000)
    parts = [data[:100_000], data[100_000:250_000], data[250_000:]]
    r = client.request("POST", f"/v2/{repo_name}/blobs/uploads/")
    location = r.headers["Location"]
    r = client.request(
        "PATCH",
        location,
        data=parts[0],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "0-99999", "Content-Length": "100000"},
    )
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == "0-99999"
    location = r.headers["Location"]

    r = client.request("GET", location)
    assert r.status_code == 204
    assert r.headers["Range"] == "0-99999"
    assert r.headers["Docker-Upload-UUID"]

    # A chunk that does not start where the upload ends is refused, and changes nothing.
    r = client.request(
        "PATCH",
        location,
        data=parts[2],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "250000-299999"},
    )
    assert r.status_code == 416
    assert r.headers["Range"] == "0-99999"
    assert client.request("GET", location).headers["Range"] == "0-99999"

    r = client.request(
        "PATCH",
        location,
        data=parts[1],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "100000-249999"},
    )
    assert r.status_code == 202 and r.headers["Range"] == "0-249999"
    # The last chunk may come with the closing PUT.
    r = client.request(
        "PUT",
        r.headers["Location"],
        params={"digest": sha256(data)},
        data=parts[2],
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert client.request("GET", f"/v2/{repo_name}/blobs/{sha256(data)}").content == data


def test_streamed_patch_without_content_range(client, repo_name):
    data = secrets.token_bytes(70_000)
    location = client.request("POST", f"/v2/{repo_name}/blobs/uploads/").headers["Location"]

    def gen():  # chunked transfer encoding, as docker streams layers
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    r = client.request("PATCH", location, data=gen(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    r = client.request("PUT", r.headers["Location"], params={"digest": sha256(data)})
    assert r.status_code == 201
    assert client.request("GET", f"/v2/{repo_name}/blobs/{sha256(data)}").content == data


def test_wrong_digest_is_refused_and_nothing_becomes_visible(client, repo_name):
    data = b"actual content"
    claimed = sha256(b"other content")
    r = client.request("POST", f"/v2/{repo_name}/blobs/uploads/", params={"digest": claimed}, data=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert client.request("HEAD", f"/v2/{repo_name}/blobs/{claimed}").status_code == 404
    assert client.request("HEAD", f"/v2/{repo_name}/blobs/{sha256(data)}").status_code == 404
    location = client.request("POST", f"/v2/{repo_name}/blobs/uploads/").headers["Location"]
    r = client.request("PUT", location, params={"digest": claimed}, data=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert client.request("HEAD", f"/v2/{repo_name}/blobs/{claimed}").status_code == 404


def test_put_without_digest_is_refused(client, repo_name):
    location = client.request("POST", f"/v2/{repo_name}/blobs/uploads/").headers["Location"]
    r = client.request("PUT", location, data=b"x")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_cancel_upload(client, repo_name):
    location = client.request("POST", f"/v2/{repo_name}/blobs/uploads/").headers["Location"]
    client.request("PATCH", location, data=b"abc")
    r = client.request("DELETE", location)
    assert r.status_code == 204
    r = client.request("GET", location)
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"
    r = client.request("PATCH", location, data=b"more")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_unknown_upload(client, repo_name):
    client.push_blob(repo_name, b"make repo")
    for upload_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        r = client.request("GET", f"/v2/{repo_name}/blobs/uploads/{upload_id}")
        assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_sha512_blob(client, repo_name):
    data = b"sha512 content"
    r = client.request("POST", f"/v2/{repo_name}/blobs/uploads/", params={"digest": sha512(data)}, data=data)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == sha512(data)
    r = client.request("GET", f"/v2/{repo_name}/blobs/{sha512(data)}")
    assert r.status_code == 200 and r.content == data


def test_sha512_chunked_upload(client, repo_name):
    data = secrets.token_bytes(200_000)
    location = client.request("POST", f"/v2/{repo_name}/blobs/uploads/").headers["Location"]
    location = client.request("PATCH", location, data=data[:50_000]).headers["Location"]
    r = client.request("PUT", location, params={"digest": sha512(data)}, data=data[50_000:])
    assert r.status_code == 201, r.text
    assert client.request("GET", f"/v2/{repo_name}/blobs/{sha512(data)}").content == data


# The closing PUT and the monolithic POST carry a chunk too, and the spec's chunk rules hold for
# them as for PATCH: "Chunks MUST be uploaded in order, with the first byte of a chunk being the
# last chunk's `<end-of-range>` plus one. If a chunk is uploaded out of order, the registry MUST
# respond with a `416 Requested Range Not Satisfiable` code."
CHUNKED_BLOB = bytes(range(256)) * 12  # 3072 bytes: chunks 0-1023, 1024-2047, 2048-3071


def _upload_with_first_chunk(client, repo_name) -> str:
    location = client.request("POST", f"/v2/{repo_name}/blobs/uploads/").headers["Location"]
    r = client.request(
        "PATCH",
        location,
        data=CHUNKED_BLOB[:1024],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "0-1023"},
    )
    assert r.status_code == 202 and r.headers["Range"] == "0-1023", r.text
    return r.headers["Location"]


@pytest.mark.parametrize("algorithm", [sha256, sha512], ids=["sha256", "sha512"])
@pytest.mark.parametrize(
    "content_range,body",
    [
        ("2048-3071", CHUNKED_BLOB[2048:]),  # skips the second chunk (the conformance suite's case)
        ("0-1023", CHUNKED_BLOB[:1024]),  # sends the first chunk again
        ("1024-1030", CHUNKED_BLOB[1024:2048]),  # says 7 bytes, carries 1024
    ],
    ids=["skips-a-chunk", "repeats-the-first-chunk", "length-disagrees"],
)
def test_closing_put_with_an_out_of_order_chunk_is_refused_with_416_and_the_upload_goes_on(
    client, repo_name, algorithm, content_range, body
):
    """spec.md, closing a chunked upload: "issue a `PUT` request ... with the following headers
    ... `Content-Range: <range of chunk, if present>`", and "If a chunk is uploaded out of order,
    the registry MUST respond with a `416 Requested Range Not Satisfiable` code. A GET request
    may be used to retrieve the current valid offset". A refused chunk leaves nothing behind:
    the upload still holds its first 1024 bytes and takes the right next chunk."""
    location = _upload_with_first_chunk(client, repo_name)
    digest = algorithm(CHUNKED_BLOB)
    r = client.request(
        "PUT",
        location,
        params={"digest": digest},
        data=body,
        headers={"Content-Type": "application/octet-stream", "Content-Range": content_range},
    )
    assert r.status_code == 416, r.text
    assert error_code(r) == "RANGE_INVALID"
    assert r.headers["Range"] == "0-1023"
    assert client.request("HEAD", f"/v2/{repo_name}/blobs/{digest}").status_code == 404
    r = client.request("GET", location)
    assert r.status_code == 204 and r.headers["Range"] == "0-1023"

    r = client.request(
        "PATCH",
        location,
        data=CHUNKED_BLOB[1024:2048],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "1024-2047"},
    )
    assert r.status_code == 202 and r.headers["Range"] == "0-2047", r.text
    r = client.request(
        "PUT",
        r.headers["Location"],
        params={"digest": digest},
        data=CHUNKED_BLOB[2048:],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "2048-3071"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert client.request("GET", f"/v2/{repo_name}/blobs/{digest}").content == CHUNKED_BLOB


def test_closing_put_whose_content_range_starts_at_the_upload_offset_completes_it(client, repo_name):
    """spec.md: "The final chunk MAY be uploaded using a `PATCH` request or it MAY be uploaded in
    the closing `PUT` request", with "`Content-Range: <range of chunk, if present>`"; the chunk
    that continues the upload is taken, and "The response to a successful closing of the session
    MUST be `201 Created`"."""
    location = _upload_with_first_chunk(client, repo_name)
    r = client.request(
        "PUT",
        location,
        params={"digest": sha256(CHUNKED_BLOB)},
        data=CHUNKED_BLOB[1024:],
        headers={"Content-Type": "application/octet-stream", "Content-Range": "1024-3071"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo_name}/blobs/{sha256(CHUNKED_BLOB)}"
    assert client.request("GET", f"/v2/{repo_name}/blobs/{sha256(CHUNKED_BLOB)}").content == CHUNKED_BLOB


@pytest.mark.parametrize("content_range", ["1024-2047", "1-1024", "0-10"])
def test_monolithic_post_whose_content_range_is_not_the_whole_blob_from_zero_is_refused_with_416(
    client, repo_name, content_range
):
    """spec.md, chunks: "The first chunk's range MUST begin with `0`", and "If a chunk is uploaded
    out of order, the registry MUST respond with a `416 Requested Range Not Satisfiable` code".
    A single POST's body is the first chunk of the upload it starts: one that claims to start
    elsewhere (or to be another length than it is) is refused, and nothing of it is stored. No
    `Range` is reported: no upload was started."""
    data = CHUNKED_BLOB[:1024]
    r = client.request(
        "POST",
        f"/v2/{repo_name}/blobs/uploads/",
        params={"digest": sha256(data)},
        data=data,
        headers={"Content-Type": "application/octet-stream", "Content-Range": content_range},
    )
    assert r.status_code == 416, r.text
    assert error_code(r) == "RANGE_INVALID"
    assert "Range" not in r.headers and "Location" not in r.headers
    assert client.request("HEAD", f"/v2/{repo_name}/blobs/{sha256(data)}").status_code == 404
    r = client.request(
        "POST",
        f"/v2/{repo_name}/blobs/uploads/",
        params={"digest": sha256(data)},
        data=data,
        headers={"Content-Type": "application/octet-stream", "Content-Range": "0-1023"},
    )
    assert r.status_code == 201, r.text
    assert client.request("GET", f"/v2/{repo_name}/blobs/{sha256(data)}").content == data


# -- blobs: pull -------------------------------------------------------------------------------


def test_blob_head_and_get_headers(client, repo_name):
    data = secrets.token_bytes(1234)
    digest = client.push_blob(repo_name, data)
    r = client.request("HEAD", f"/v2/{repo_name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "1234"
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.content == b""
    r = client.request("GET", f"/v2/{repo_name}/blobs/{digest}")
    assert r.headers["Docker-Content-Digest"] == digest
    assert hashlib.sha256(r.content).hexdigest() == digest.split(":")[1]


@pytest.mark.parametrize(
    "header,expected",
    [
        ("bytes=0-9", slice(0, 10)),
        ("bytes=100-199", slice(100, 200)),
        ("bytes=990-", slice(990, 1000)),
        ("bytes=-5", slice(995, 1000)),
        ("bytes=900-5000", slice(900, 1000)),
    ],
)
def test_blob_range_requests(client, repo_name, header, expected):
    data = secrets.token_bytes(1000)
    digest = client.push_blob(repo_name, data)
    r = client.request("GET", f"/v2/{repo_name}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206
    assert r.content == data[expected]
    first, last = expected.start, expected.stop - 1
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/1000"
    assert r.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0", "items=0-1", "bytes=abc"])
def test_blob_unsatisfiable_range(client, repo_name, header):
    digest = client.push_blob(repo_name, secrets.token_bytes(1000))
    r = client.request("GET", f"/v2/{repo_name}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */1000"
    assert error_code(r) == "RANGE_INVALID"


def test_blob_unknown(client, repo_name):
    client.push_blob(repo_name, b"exists")
    missing = sha256(b"missing")
    for method in ("GET", "HEAD"):
        r = client.request(method, f"/v2/{repo_name}/blobs/{missing}")
        assert r.status_code == 404
    assert error_code(client.request("GET", f"/v2/{repo_name}/blobs/{missing}")) == "BLOB_UNKNOWN"


@pytest.mark.parametrize(
    "reference",
    ["sha256:totallywrong", "sha256:" + "A" * 64, "sha384:" + "a" * 96, "notadigest", ".INVALID_MANIFEST_NAME"],
)
def test_blob_by_a_reference_that_is_not_a_digest_is_not_found(client, repo_name, reference):
    """spec.md lists `404` as the only failure of `GET` / `HEAD /v2/<name>/blobs/<digest>`
    (end-2): "If the blob is not found in the repository, the response code MUST be `404 Not
    Found`"; and for `DELETE` (end-10): "If the blob is not found, a `404 Not Found` code MUST be
    returned". No blob is stored under something that is not a digest this registry supports."""
    client.push_blob(repo_name, b"the repository exists")
    for method in ("GET", "HEAD", "DELETE"):
        r = client.request(method, f"/v2/{repo_name}/blobs/{reference}")
        assert r.status_code == 404, (method, r.status_code, r.text)
        if method != "HEAD":
            assert error_code(r) == "BLOB_UNKNOWN"


def test_blob_delete(client, repo_name):
    digest = client.push_blob(repo_name, b"to delete")
    r = client.request("DELETE", f"/v2/{repo_name}/blobs/{digest}")
    assert r.status_code == 202
    assert client.request("GET", f"/v2/{repo_name}/blobs/{digest}").status_code == 404
    r = client.request("DELETE", f"/v2/{repo_name}/blobs/{digest}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"


def test_blob_pushed_to_one_repository_is_not_served_from_another(client, repo_name):
    digest = client.push_blob(repo_name, b"private to one repository")
    other = repo_name + "-other"
    client.push_blob(other, b"something else")
    assert client.request("GET", f"/v2/{other}/blobs/{digest}").status_code == 404


# -- cross-repository mount --------------------------------------------------------------------


def test_mount_from_another_repository(client, repo_name):
    data = b"mount me"
    digest = client.push_blob(repo_name, data)
    target = repo_name + "-target"
    r = client.request("POST", f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": repo_name})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert client.request("GET", f"/v2/{target}/blobs/{digest}").content == data


def test_mount_of_absent_blob_falls_back_to_an_upload(client, repo_name):
    r = client.request(
        "POST", f"/v2/{repo_name}/blobs/uploads/", params={"mount": sha256(b"never pushed"), "from": repo_name + "-src"}
    )
    assert r.status_code == 202
    assert "/blobs/uploads/" in r.headers["Location"]


def test_mount_without_from(client, repo_name):
    digest = client.push_blob(repo_name, b"mount without from")
    target = repo_name + "-nofrom"
    r = client.request("POST", f"/v2/{target}/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 201
    assert client.request("HEAD", f"/v2/{target}/blobs/{digest}").status_code == 200


def test_mount_never_crosses_registries(server, client, repo_name):
    other_registry = create_registry(server)
    digest = client.push_blob(repo_name, b"stays in its registry")
    target = f"{other_registry}/app"
    r = client.request("POST", f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": repo_name})
    assert r.status_code == 202  # an upload, not a mount
    r = client.request("POST", f"/v2/{target}/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 202
    assert client.request("HEAD", f"/v2/{target}/blobs/{digest}").status_code == 404


# -- manifests ---------------------------------------------------------------------------------


def test_manifest_push_by_tag_and_pull_by_tag_and_digest(client, repo_name):
    digest, body, _ = client.push_image(repo_name, "v1")
    for ref in ("v1", digest):
        r = client.request("GET", f"/v2/{repo_name}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["Content-Type"] == OCI_MANIFEST
        assert r.headers["Docker-Content-Digest"] == digest
        r = client.request("HEAD", f"/v2/{repo_name}/manifests/{ref}")
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(len(body))
        assert r.headers["Docker-Content-Digest"] == digest
        assert r.content == b""


def test_manifest_put_response_headers(client, repo_name):
    _, _, manifest = client.push_image(repo_name, "ignored")
    body = json.dumps(manifest, indent=1).encode()
    r = client.push_manifest(repo_name, "v2", body)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{repo_name}/manifests/{sha256(body)}"
    assert r.headers["Docker-Content-Digest"] == sha256(body)


def test_manifest_push_by_digest(client, repo_name):
    _, _, manifest = client.push_image(repo_name, "base")
    body = json.dumps({**manifest, "annotations": {"k": "v"}}).encode()
    r = client.push_manifest(repo_name, sha256(body), body)
    assert r.status_code == 201
    assert client.request("GET", f"/v2/{repo_name}/manifests/{sha256(body)}").content == body


def test_manifest_push_by_sha512_digest(client, repo_name):
    _, _, manifest = client.push_image(repo_name, "base")
    body = json.dumps({**manifest, "annotations": {"algo": "sha512"}}).encode()
    r = client.push_manifest(repo_name, sha512(body), body)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == sha512(body)
    r = client.request("GET", f"/v2/{repo_name}/manifests/{sha512(body)}")
    assert r.status_code == 200 and r.content == body


def test_manifest_digest_mismatch(client, repo_name):
    _, body, _ = client.push_image(repo_name, "base")
    r = client.push_manifest(repo_name, sha256(b"something else"), body)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_manifest_with_missing_blob(client, repo_name):
    _, _, manifest = client.push_image(repo_name, "base")
    manifest["layers"].append(
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(b"never pushed"), "size": 12}
    )
    r = client.push_manifest(repo_name, "broken", manifest)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert client.request("GET", f"/v2/{repo_name}/manifests/broken").status_code == 404


def test_manifest_with_non_distributable_layer_needs_no_blob(client, repo_name):
    _, _, manifest = client.push_image(repo_name, "base")
    manifest["layers"].append(
        {
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": sha256(b"lives elsewhere"),
            "size": 15,
            "urls": ["https://example.com/layer"],
        }
    )
    assert client.push_manifest(repo_name, "foreign", manifest).status_code == 201


@pytest.mark.parametrize(
    "content_type",
    [
        DOCKER_MANIFEST,
        OCI_INDEX,
        "application/json",
        "text/plain",
        "",
        "application/vnd.oci.image.manifest.v2+json",
    ],
)
def test_manifest_content_type_must_match_media_type(client, repo_name, content_type):
    _, _, manifest = client.push_image(repo_name, "base")
    r = client.push_manifest(repo_name, "mismatch", manifest, media_type=content_type)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/mismatch").status_code == 404


def test_docker_schema2_manifest_and_manifest_list(client, repo_name):
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = b"docker layer"
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": client.push_blob(repo_name, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": client.push_blob(repo_name, layer),
                "size": len(layer),
            }
        ],
    }
    body = json.dumps(manifest).encode()
    r = client.push_manifest(repo_name, "docker", body, DOCKER_MANIFEST)
    assert r.status_code == 201, r.text
    r = client.request("GET", f"/v2/{repo_name}/manifests/docker")
    assert r.headers["Content-Type"] == DOCKER_MANIFEST
    listing = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": sha256(body),
                "size": len(body),
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    r = client.push_manifest(repo_name, "list", listing, DOCKER_LIST)
    assert r.status_code == 201, r.text
    assert client.request("GET", f"/v2/{repo_name}/manifests/list").headers["Content-Type"] == DOCKER_LIST


def test_oci_index_requires_its_manifests(client, repo_name):
    digest, body, _ = client.push_image(repo_name, None)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    r = client.push_manifest(repo_name, "multi", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": sha256(b"nope"), "size": 4})
    r = client.push_manifest(repo_name, "multi2", index, OCI_INDEX)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


def test_manifest_size_limit(client, repo_name):
    _, _, manifest = client.push_image(repo_name, "base")
    manifest["annotations"] = {"padding": "x" * (4 * 1024 * 1024)}
    r = client.push_manifest(repo_name, "huge", manifest)
    assert r.status_code == 413 and error_code(r) == "MANIFEST_INVALID"


def test_tag_overwrite_is_allowed(client, repo_name):
    first, _, _ = client.push_image(repo_name, "latest", layers=[b"one"])
    second, _, _ = client.push_image(repo_name, "latest", layers=[b"two"])
    assert first != second
    r = client.request("HEAD", f"/v2/{repo_name}/manifests/latest")
    assert r.headers["Docker-Content-Digest"] == second
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/{first}").status_code == 200


def test_manifest_unknown(client, repo_name):
    client.push_image(repo_name, "exists")
    for ref in ("nope", sha256(b"nope")):
        r = client.request("GET", f"/v2/{repo_name}/manifests/{ref}")
        assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    r = client.request("GET", "/v2/default/never/pushed/manifests/latest")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


INVALID_REFERENCES = [
    ".INVALID_MANIFEST_NAME",
    "-dash-first",
    "t" * 129,
    "sha256:totallywrong",
    "sha256:" + "A" * 64,
    "sha384:" + "a" * 96,
    "md5:0123456789abcdef",
]


@pytest.mark.parametrize("reference", INVALID_REFERENCES)
def test_manifest_get_and_head_by_a_reference_that_is_neither_tag_nor_digest_is_not_found(client, repo_name, reference):
    """spec.md, pulling manifests: "`<reference>` MUST be either (a) the digest of the manifest or
    (b) a tag. The `<reference>` MUST NOT be in any other format", and "If the manifest is not
    found in the repository, the response code MUST be `404 Not Found`"; the endpoints table
    lists `404` as the only failure of `GET` / `HEAD /v2/<name>/manifests/<reference>` (end-3).
    Nothing can be found under such a reference, so it is not found (as Distribution answers)."""
    client.push_image(repo_name, "exists")
    r = client.request("GET", f"/v2/{repo_name}/manifests/{reference}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN", r.text
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/{reference}").status_code == 404


@pytest.mark.parametrize("reference", INVALID_REFERENCES)
def test_manifest_delete_by_a_reference_that_is_neither_tag_nor_digest_is_not_found(client, repo_name, reference):
    """spec.md, endpoints table: `DELETE /v2/<name>/manifests/<reference>` (end-9) fails with
    `404`/`400`/`405`, the `400` and `405` being for "If tag deletion is disabled" and "If
    manifest deletion is disabled"; a reference that can name no tag and no manifest names
    nothing to delete: `404`, and nothing is deleted."""
    digest, _, _ = client.push_image(repo_name, "exists")
    r = client.request("DELETE", f"/v2/{repo_name}/manifests/{reference}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN", r.text
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/exists").headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize("reference", [".INVALID_MANIFEST_NAME", "-dash-first", "t" * 129])
def test_manifest_push_under_an_invalid_tag_is_refused_with_400(client, repo_name, reference):
    """spec.md, pushing manifests: "the `<reference>` MUST be either a) a digest or b) a tag", and
    "`<reference>` as a tag MUST be at most 128 characters in length and MUST match the following
    regular expression: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`". A push is a request with a body to
    judge, unlike a read: an invalid tag is the client's error (400 MANIFEST_INVALID), and
    nothing is stored."""
    _, body, _ = client.push_image(repo_name, "base")
    r = client.push_manifest(repo_name, reference, body)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID", r.text
    assert client.request("GET", f"/v2/{repo_name}/tags/list").json()["tags"] == ["base"]


def test_delete_tag_keeps_manifest(client, repo_name):
    digest, _, _ = client.push_image(repo_name, "temp")
    r = client.request("DELETE", f"/v2/{repo_name}/manifests/temp")
    assert r.status_code == 202
    assert client.request("GET", f"/v2/{repo_name}/manifests/temp").status_code == 404
    assert client.request("GET", f"/v2/{repo_name}/manifests/{digest}").status_code == 200


def test_delete_manifest_by_digest_removes_its_tags(client, repo_name):
    digest, _, _ = client.push_image(repo_name, "a")
    client.push_manifest(repo_name, "b", client.request("GET", f"/v2/{repo_name}/manifests/a").content)
    r = client.request("DELETE", f"/v2/{repo_name}/manifests/{digest}")
    assert r.status_code == 202
    for ref in ("a", "b", digest):
        r = client.request("GET", f"/v2/{repo_name}/manifests/{ref}")
        assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    assert client.request("GET", f"/v2/{repo_name}/tags/list").json()["tags"] == []
    r = client.request("DELETE", f"/v2/{repo_name}/manifests/{digest}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


# -- manifests: tag parameters on a push by digest ---------------------------------------------
# spec.md, "Pushing Manifests": "When pushing a manifest by digest, the registry MAY support the
# pushing of tags specified by addition of `tag` query parameters. If a registry supports this, it:
# SHOULD support pushing at least 10 tags per request. MAY return a `414 Request-URI Too Long`
# status if too many tags are included in the request. MUST include an `OCI-Tag` response header,
# in accordance with RFC 9110 (section 5) semantics, for each accepted tag."


def unpushed_manifest(client: RegistryClient, repo: str, note: str = "tagged") -> bytes:
    """A manifest whose blobs are in `repo` but which is not stored itself."""
    _, _, manifest = client.push_image(repo, None)
    return json.dumps({**manifest, "annotations": {"note": note}}).encode()


def put_with_tags(client: RegistryClient, repo: str, reference: str, body: bytes, tags: list[str]) -> requests.Response:
    return client.request(
        "PUT",
        f"/v2/{repo}/manifests/{reference}",
        params={"tag": tags},
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )


def oci_tag_lines(r: requests.Response) -> list[str]:
    """The `OCI-Tag` header lines as sent (requests folds repeated headers into one value)."""
    return r.raw.headers.getlist("OCI-Tag")


def tag_of(client: RegistryClient, repo: str, tag: str) -> str | None:
    """The digest `tag` points at, None when it points nowhere."""
    r = client.request("HEAD", f"/v2/{repo}/manifests/{tag}")
    return r.headers["Docker-Content-Digest"] if r.status_code == 200 else None


def audit_events(server, digest: str) -> list[dict]:
    events = Api(server)("GET", "/audit", params={"registry": "default", "limit": 100}).json()["events"]
    return [e for e in events if e["digest"] == digest]


def test_a_push_by_digest_with_tag_parameters_applies_each_tag_and_answers_an_oci_tag_header_per_tag(client, repo_name):
    """ "For example, if the client pushed a manifest with the following tags:
    `PUT /v2/<name>/manifests/<digest>?tag=1.2.3&tag=1.2&tag=1&tag=latest`": each is applied, and
    the registry "MUST include an `OCI-Tag` response header ... for each accepted tag"."""
    body = unpushed_manifest(client, repo_name)
    tags = ["1.2.3", "1.2", "1", "latest"]
    r = put_with_tags(client, repo_name, sha256(body), body, tags + ["1.2"])  # a repeated tag counts once
    assert r.status_code == 201, r.text
    assert oci_tag_lines(r) == tags
    assert r.headers["Location"] == f"/v2/{repo_name}/manifests/{sha256(body)}"
    assert r.headers["Docker-Content-Digest"] == sha256(body)
    for tag in tags:
        got = client.request("GET", f"/v2/{repo_name}/manifests/{tag}")
        assert got.status_code == 200 and got.content == body
    assert client.request("GET", f"/v2/{repo_name}/tags/list").json()["tags"] == sorted(tags)


def test_a_push_by_digest_without_tag_parameters_answers_no_oci_tag_header(client, repo_name):
    """The header is "for each accepted tag": none when none was asked for."""
    body = unpushed_manifest(client, repo_name)
    r = client.push_manifest(repo_name, sha256(body), body)
    assert r.status_code == 201 and "OCI-Tag" not in r.headers
    assert client.request("GET", f"/v2/{repo_name}/tags/list").json()["tags"] == []


def test_a_sha512_manifest_pushed_with_tag_parameters_is_found_under_each_tag_by_its_sha512_digest(client, repo_name):
    """Pushing by digest with `tag` parameters is how a manifest addressed by another algorithm
    than sha256 gets tags: a push by tag would name it by its sha256."""
    body = unpushed_manifest(client, repo_name, "sha512")
    r = put_with_tags(client, repo_name, sha512(body), body, ["v1", "stable"])
    assert r.status_code == 201, r.text
    assert oci_tag_lines(r) == ["v1", "stable"] and r.headers["Docker-Content-Digest"] == sha512(body)
    for tag in ("v1", "stable"):
        got = client.request("GET", f"/v2/{repo_name}/manifests/{tag}")
        assert got.status_code == 200 and got.content == body
        assert got.headers["Docker-Content-Digest"] == sha512(body)
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/{sha256(body)}").status_code == 404


def test_a_push_may_carry_fifty_tags_and_one_more_is_refused_with_414_storing_nothing(client, repo_name):
    """A registry "SHOULD support pushing at least 10 tags per request" and "MAY return a `414
    Request-URI Too Long` status if too many tags are included in the request". Berth takes 50."""
    body = unpushed_manifest(client, repo_name, "many")
    too_many = [f"t{i}" for i in range(51)]
    r = put_with_tags(client, repo_name, sha256(body), body, too_many)
    assert r.status_code == 414 and error_code(r) == "MANIFEST_INVALID" and "at most 50" in r.text
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/{sha256(body)}").status_code == 404
    assert client.request("GET", f"/v2/{repo_name}/tags/list").json()["tags"] == []
    r = put_with_tags(client, repo_name, sha256(body), body, too_many[:50])
    assert r.status_code == 201, r.text
    assert oci_tag_lines(r) == too_many[:50]
    assert len(client.request("GET", f"/v2/{repo_name}/tags/list").json()["tags"]) == 50


@pytest.mark.parametrize("bad", ["", ".hidden", "-dash", "a,b", "has space", "x" * 129, "v1\n", "caf\u00e9"])
def test_a_bad_tag_among_good_ones_refuses_the_push_and_stores_nothing(client, repo_name, bad):
    """ "`<reference>` as a tag MUST be at most 128 characters in length and MUST match the
    following regular expression: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`". One tag parameter that
    does not is a bad request for the whole push: neither the manifest nor the good tags are stored."""
    body = unpushed_manifest(client, repo_name, "bad")
    r = put_with_tags(client, repo_name, sha256(body), body, ["good", bad, "also-good"])
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID", r.text
    assert "OCI-Tag" not in r.headers
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/{sha256(body)}").status_code == 404
    assert tag_of(client, repo_name, "good") is None and tag_of(client, repo_name, "also-good") is None


def test_tag_parameters_on_a_push_by_tag_are_refused(client, repo_name):
    """The spec defines `tag` parameters "when pushing a manifest by digest" only. On a push by
    tag they are refused (400) rather than ignored, so a client never takes them as applied."""
    body = unpushed_manifest(client, repo_name, "by-tag")
    r = put_with_tags(client, repo_name, "v1", body, ["v2"])
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID" and "push by digest" in r.text
    assert tag_of(client, repo_name, "v1") is None and tag_of(client, repo_name, "v2") is None
    assert client.request("HEAD", f"/v2/{repo_name}/manifests/{sha256(body)}").status_code == 404


def test_an_immutable_tag_held_by_another_digest_refuses_every_tag_of_the_push(server, client):
    """Each tag parameter is a tag push under the registry's write policy: in a repository whose
    tags are immutable, one tag already held by another digest refuses the whole push (403
    DENIED), and no other tag of it, nor the manifest, is stored."""
    registry = create_registry(server)
    assert Api(server)("PATCH", f"/registries/{registry}", json={"immutable_tags": ["*"]}).status_code == 200
    repo = f"{registry}/app"
    held, _, _ = client.push_image(repo, "v1")
    body = unpushed_manifest(client, repo, "second")
    r = put_with_tags(client, repo, sha256(body), body, ["new-1", "v1", "new-2"])
    assert r.status_code == 403 and error_code(r) == "DENIED" and "immutable" in r.text, r.text
    assert "OCI-Tag" not in r.headers
    assert tag_of(client, repo, "v1") == held
    assert tag_of(client, repo, "new-1") is None and tag_of(client, repo, "new-2") is None
    assert client.request("HEAD", f"/v2/{repo}/manifests/{sha256(body)}").status_code == 404
    # The same digest again under its own tag, with new tags beside it, is allowed.
    held_body = client.request("GET", f"/v2/{repo}/manifests/{held}").content
    r = put_with_tags(client, repo, held, held_body, ["v1", "v1.0"])
    assert r.status_code == 201 and oci_tag_lines(r) == ["v1", "v1.0"]
    assert tag_of(client, repo, "v1.0") == held


def test_a_push_with_tag_parameters_is_audited_as_one_record_listing_its_tags(server, client, repo_name):
    """One audit record per request: `detail.tags` lists the tags asked for, a refused push's too;
    a push that moves tags is `tag.overwrite` with each moved tag's previous digest."""
    first = unpushed_manifest(client, repo_name, "first")
    assert put_with_tags(client, repo_name, sha256(first), first, ["a", "b"]).status_code == 201
    second = unpushed_manifest(client, repo_name, "second")
    assert put_with_tags(client, repo_name, sha256(second), second, ["b", "c"]).status_code == 201
    third = unpushed_manifest(client, repo_name, "third")
    assert put_with_tags(client, repo_name, sha256(third), third, ["only"]).status_code == 201

    [pushed] = audit_events(server, sha256(first))
    assert pushed["action"] == "manifest.push" and pushed["outcome"] == "success"
    assert pushed["detail"] == {"tags": ["a", "b"]} and pushed["tag"] is None
    [moved] = audit_events(server, sha256(second))
    assert moved["action"] == "tag.overwrite"
    assert moved["detail"] == {"tags": ["b", "c"], "previous_digests": {"b": sha256(first)}}
    [single] = audit_events(server, sha256(third))
    assert single["tag"] == "only" and single["detail"] == {"tags": ["only"]}


def test_a_refused_push_with_tag_parameters_is_audited_with_the_tags_it_asked_for(server, client):
    registry = create_registry(server)
    assert Api(server)("PATCH", f"/registries/{registry}", json={"immutable_tags": ["*"]}).status_code == 200
    client.push_image(f"{registry}/app", "v1")
    body = unpushed_manifest(client, f"{registry}/app", "refused")
    assert put_with_tags(client, f"{registry}/app", sha256(body), body, ["v2", "v1"]).status_code == 403
    events = Api(server)("GET", "/audit", params={"registry": registry, "limit": 100}).json()["events"]
    [refused] = [e for e in events if e["digest"] == sha256(body)]
    assert refused["action"] == "manifest.push" and refused["outcome"] == "denied" and refused["status"] == 403
    assert refused["detail"] == {"tags": ["v2", "v1"]}


# -- tags and catalog --------------------------------------------------------------------------


def test_tags_list_sorted_and_paginated(client, repo_name):
    digest, body, _ = client.push_image(repo_name, "zeta")
    names = ["zeta", "alpha", "Beta", "1.0", "1.10", "1.2", "_x", "alpha-1"]
    for name in names[1:]:
        assert client.push_manifest(repo_name, name, body).status_code == 201
    expected = sorted(names)  # lexical: byte order
    r = client.request("GET", f"/v2/{repo_name}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": repo_name, "tags": expected}
    assert "Link" not in r.headers

    seen, url = [], f"/v2/{repo_name}/tags/list?n=3"
    while url:
        r = client.request("GET", url)
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        link = r.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        if link:
            assert link.endswith('rel="next"')
    assert seen == expected

    r = client.request("GET", f"/v2/{repo_name}/tags/list", params={"n": 2, "last": "alpha"})
    assert r.json()["tags"] == expected[expected.index("alpha") + 1 :][:2]
    r = client.request("GET", f"/v2/{repo_name}/tags/list", params={"n": 0})
    assert r.json()["tags"] == []


@pytest.mark.parametrize(
    "last,expected",
    [
        (".INVALID_MANIFEST_NAME", ["a", "b", "c"]),  # sorts before every tag
        ("b.", ["c"]),
        ("~" * 300, []),  # sorts after every tag, and is longer than any tag may be
        ("\u00e9t\u00e9", []),
    ],
)
def test_tags_list_after_a_last_that_is_not_a_tag_is_still_a_page(client, repo_name, last, expected):
    """spec.md, listing tags: "`<tagname>` MUST NOT be a numerical index, but rather it MUST be a
    proper tag. A request of this sort will return up to `<int>` tags, beginning non-inclusively
    with `<tagname>`"; the endpoints table lists `404` as the only failure of
    `GET /v2/<name>/tags/list?n=<integer>&last=<tagname>` (end-8b). A `last` that is no tag is
    still a place in the lexical order: the page is the tags after it."""
    _, body, _ = client.push_image(repo_name, "a")
    for tag in ("b", "c"):
        assert client.push_manifest(repo_name, tag, body).status_code == 201
    for params in ({"last": last}, {"n": 10, "last": last}):
        r = client.request("GET", f"/v2/{repo_name}/tags/list", params=params)
        assert r.status_code == 200, (params, r.text)
        assert r.json() == {"name": repo_name, "tags": expected}


def test_tags_list_of_unknown_repository(client):
    r = client.request("GET", "/v2/default/no/such/repo/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_catalog_lists_repositories_with_pagination(fresh_server):
    server = fresh_server.start()
    client = RegistryClient(server.url, server.session())
    repos = ["default/b", "default/a/x", "default/a", "default/c-d"]
    for repo in repos:
        client.push_image(repo, "v1")
    other = create_registry(server, "other")
    client.push_image(f"{other}/z", "v1")
    everything = sorted(repos + ["other/z"])
    r = client.request("GET", "/v2/_catalog")
    assert r.status_code == 200 and r.json() == {"repositories": everything}

    seen, url = [], "/v2/_catalog?n=2"
    while url:
        r = client.request("GET", url)
        seen += r.json()["repositories"]
        link = r.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == everything

    # On a registry's own host the catalog is that registry's, without the prefix.
    r = client.request("GET", "/v2/_catalog", headers={"Host": f"other.registry.localhost:{server.port}"})
    assert r.json() == {"repositories": ["z"]}
    anon = RegistryClient(server.url, server.session(token=None))
    assert anon.request("GET", "/v2/_catalog").status_code == 401


# -- referrers ---------------------------------------------------------------------------------


def test_referrers_api(client, repo_name):
    subject_digest, subject_body, _ = client.push_image(repo_name, "app")
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_body)}
    empty = b"{}"
    empty_digest = client.push_blob(repo_name, empty)
    referrers = {}
    for artifact_type, payload in (("application/vnd.example.sbom", b"sbom"), ("application/vnd.example.sig", b"sig")):
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2},
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": client.push_blob(repo_name, payload),
                    "size": len(payload),
                }
            ],
            "subject": subject,
            "annotations": {"org.example.kind": artifact_type},
        }
        body = json.dumps(manifest).encode()
        r = client.push_manifest(repo_name, sha256(body), body)
        assert r.status_code == 201, r.text
        assert r.headers["OCI-Subject"] == subject_digest
        referrers[artifact_type] = (sha256(body), len(body))

    r = client.request("GET", f"/v2/{repo_name}/referrers/{subject_digest}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    got = {m["artifactType"]: (m["digest"], m["size"]) for m in index["manifests"]}
    assert got == referrers
    assert all(
        m["mediaType"] == OCI_MANIFEST and m["annotations"]["org.example.kind"] == m["artifactType"]
        for m in index["manifests"]
    )

    r = client.request(
        "GET", f"/v2/{repo_name}/referrers/{subject_digest}", params={"artifactType": "application/vnd.example.sig"}
    )
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [referrers["application/vnd.example.sig"][0]]

    r = client.request("GET", f"/v2/{repo_name}/referrers/{sha256(b'no referrers')}")
    assert r.status_code == 200 and r.json()["manifests"] == []
    r = client.request("GET", f"/v2/{repo_name}/referrers/sha256:nothex")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_referrer_artifact_type_defaults_to_config_media_type(client, repo_name):
    subject_digest, subject_body, _ = client.push_image(repo_name, "app")
    config = b'{"signed": true}'
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.example.signature.config",
            "digest": client.push_blob(repo_name, config),
            "size": len(config),
        },
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_body)},
    }
    assert client.push_manifest(repo_name, "sig", manifest).status_code == 201
    r = client.request("GET", f"/v2/{repo_name}/referrers/{subject_digest}")
    assert [m["artifactType"] for m in r.json()["manifests"]] == ["application/vnd.example.signature.config"]


@pytest.mark.parametrize("reference", ["sha256:nothex", "sha384:" + "a" * 96, "notadigest", ".INVALID_MANIFEST_NAME"])
def test_referrers_of_a_malformed_digest_is_a_bad_request_never_not_found(client, repo_name, reference):
    """spec.md, listing referrers: "If the request is invalid, such as a `<digest>` with an invalid
    syntax, a `400 Bad Request` MUST be returned", and "If the registry supports the referrers API,
    the registry MUST NOT return a `404 Not Found` to a referrers API requests" - not even for a
    repository that does not exist, whose list is empty."""
    client.push_image(repo_name, "app")
    r = client.request("GET", f"/v2/{repo_name}/referrers/{reference}")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", r.text
    r = client.request("GET", f"/v2/{repo_name}-never-pushed/referrers/{sha256(b'x')}")
    assert r.status_code == 200 and r.json()["manifests"] == []


# -- addressing and isolation ------------------------------------------------------------------


def test_host_form_addresses_the_same_registry(server, client, repo_name):
    digest, body, _ = client.push_image(repo_name, "v1")
    inner = repo_name.split("/", 1)[1]
    host = {"Host": f"default.registry.localhost:{server.port}"}
    r = client.request("GET", f"/v2/{inner}/manifests/v1", headers=host)
    assert r.status_code == 200 and r.content == body
    # Pushing through the host form lands in the same registry.
    data = b"pushed by host form"
    r = client.request("POST", f"/v2/{inner}/blobs/uploads/", params={"digest": sha256(data)}, data=data, headers=host)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{inner}/blobs/{sha256(data)}"
    assert client.request("GET", f"/v2/{repo_name}/blobs/{sha256(data)}").content == data


def test_registries_are_isolated(server, client):
    a, b = create_registry(server), create_registry(server)
    digest, body, manifest = client.push_image(f"{a}/app", "v1")
    layer = manifest["layers"][0]["digest"]
    # Same repository name, other registry: nothing is visible.
    assert client.request("GET", f"/v2/{b}/app/manifests/v1").status_code == 404
    assert client.request("GET", f"/v2/{b}/app/manifests/{digest}").status_code == 404
    assert client.request("GET", f"/v2/{b}/app/blobs/{layer}").status_code == 404
    # Nor can a manifest in b refer to a's blobs.
    r = client.push_manifest(f"{b}/app", "v1", body)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    host_b = {"Host": f"{b}.registry.localhost"}
    assert client.request("GET", f"/v2/app/blobs/{layer}", headers=host_b).status_code == 404
    host_a = {"Host": f"{a}.registry.localhost"}
    assert client.request("GET", f"/v2/app/blobs/{layer}", headers=host_a).status_code == 200


def test_unknown_registry(client):
    r = client.request("GET", "/v2/nosuchregistry/app/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_path_form_needs_registry_and_repository(client):
    r = client.request("GET", "/v2/default/tags/list")
    assert r.status_code == 400 and error_code(r) == "NAME_INVALID"


# -- access: public and private registries -----------------------------------------------------


def test_public_registry_allows_anonymous_pull_only(server, client, anon):
    public = create_registry(server, visibility="public")
    digest, body, manifest = client.push_image(f"{public}/app", "v1")
    assert anon.request("GET", f"/v2/{public}/app/manifests/v1").content == body
    assert anon.request("GET", f"/v2/{public}/app/blobs/{manifest['layers'][0]['digest']}").status_code == 200
    assert anon.request("GET", f"/v2/{public}/app/tags/list").json()["tags"] == ["v1"]
    r = anon.request("POST", f"/v2/{public}/app/blobs/uploads/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].endswith(f'scope="repository:{public}/app:pull,push"')
    r = anon.request("DELETE", f"/v2/{public}/app/manifests/v1")
    assert r.status_code == 401
    assert client.request("HEAD", f"/v2/{public}/app/manifests/v1").status_code == 200


def test_private_registry_refuses_anonymous(client, anon, repo_name):
    client.push_image(repo_name, "v1")
    for method, path in (
        ("GET", f"/v2/{repo_name}/manifests/v1"),
        ("GET", f"/v2/{repo_name}/tags/list"),
        ("POST", f"/v2/{repo_name}/blobs/uploads/"),
    ):
        r = anon.request(method, path)
        assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"
        assert "WWW-Authenticate" in r.headers
