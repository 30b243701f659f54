"""A real Berth server on Google Cloud Storage (gcp-storage-emulator on loopback): skopeo pushes
and pulls through signed-URL redirects, chunked uploads land in GCS, the service streams when it
cannot sign, and a GCS outage is a 503 OCI error, not a traceback."""

from __future__ import annotations

import json
import os
import secrets

import pytest
import requests

from tests.support.gcs_emulator import FaultyProxy, gcs_credentials, gcs_emulator  # noqa: F401 - fixtures
from tests.support.oci_layout import OCILayout, layer_files, tagged
from tests.support.registry_client import RegistryClient, sha256
from tests.support.server import Server


def gcs_server(
    tmp_path, emulator_url: str, bucket: str, *, redirect: bool, credentials=None, query: str = ""
) -> tuple[Server, str]:
    prefix = f"srv-{secrets.token_hex(4)}"
    env = {
        "BERTH_STORAGE_URL": f"gs://{bucket}/{prefix}{query}",
        "STORAGE_EMULATOR_HOST": emulator_url,
        "BERTH_STORAGE_REDIRECT": "on" if redirect else "off",
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials) if credentials else "",
    }
    server = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env=env)
    return server.start(), prefix


@pytest.fixture
def redirecting_server(tmp_path, gcs_emulator, gcs_credentials):
    server, prefix = gcs_server(
        tmp_path, gcs_emulator.url, gcs_emulator.bucket, redirect=True, credentials=gcs_credentials
    )
    server.prefix = prefix
    yield server
    server.stop()


def objects_under(emulator, prefix: str) -> dict[str, int]:
    r = requests.get(f"{emulator.url}/storage/v1/b/{emulator.bucket}/o", params={"prefix": prefix + "/"}, timeout=10)
    assert r.status_code == 200, r.text
    return {item["name"]: int(item["size"]) for item in r.json().get("items", [])}


def access_lines(server: Server) -> list[dict]:
    lines = []
    for line in server.logs().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "status" in record and "route" in record:
            lines.append(record)
    return lines


@pytest.mark.clients
def test_skopeo_pushes_to_gcs_and_pulls_through_signed_url_redirects(
    skopeo, redirecting_server, gcs_emulator, tmp_path
):
    server = redirecting_server
    repo = "default/gcs/skopeo"
    content = os.urandom(300_000)  # an incompressible layer
    source = OCILayout(tmp_path / "source")
    image = source.add_image({"payload.bin": content, "hello.txt": b"from GCS\n"}, tag="v1")
    remote = f"docker://{server.host}/{repo}:v1"
    creds = f"admin:{server.token}"

    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{source.root}:v1", remote, timeout=300)

    # The bytes live in the bucket, under the deployment's prefix, one object per blob.
    stored = objects_under(gcs_emulator, server.prefix)
    layer = image.layers[0]
    layer_objects = {n: s for n, s in stored.items() if n.endswith(layer.digest.split(":")[1])}
    assert list(layer_objects.values()) == [layer.size], stored
    assert not [n for n in stored if "/uploads/" in n], "committed uploads leave no parts behind"

    # GET answers 307 to a V4 signed URL on the emulator; HEAD is answered by the service.
    http = server.session()
    url = f"{server.url}/v2/{repo}/blobs/{layer.digest}"
    r = http.get(url, allow_redirects=False, timeout=30)
    assert r.status_code == 307, r.text
    location = r.headers["Location"]
    assert location.startswith(f"{gcs_emulator.url}/{gcs_emulator.bucket}/{server.prefix}/blobs/")
    assert "X-Goog-Signature=" in location and "X-Goog-Expires=300" in location
    head = http.head(url, timeout=30)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == layer.size
    fetched = requests.get(location, timeout=30).content
    assert sha256(fetched) == layer.digest

    # skopeo pulls the image back, following the redirects for every blob.
    before = len(access_lines(server))
    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, remote, f"oci:{back}:v1", timeout=300)
    assert tagged(back, "v1").digest == image.digest
    for blob in (image.manifest, image.config, *image.layers):
        assert OCILayout(back).read_blob(blob.digest) == source.read_blob(blob.digest)
    assert layer_files(OCILayout(back).read_blob(layer.digest))["payload.bin"] == content
    blob_gets = [
        line for line in access_lines(server)[before:] if line.get("method") == "GET" and line["route"] == "oci.blob"
    ]
    assert blob_gets and all(line["status"] == 307 for line in blob_gets), blob_gets


def test_chunked_upload_and_streamed_pull_without_redirect(tmp_path, gcs_emulator, gcs_credentials):
    """Redirect off: a chunked (PATCH) upload is assembled in GCS and the service streams it,
    ranges included."""
    server, prefix = gcs_server(
        tmp_path, gcs_emulator.url, gcs_emulator.bucket, redirect=False, credentials=gcs_credentials
    )
    try:
        client = RegistryClient(server.url, server.session())
        repo = "default/gcs/chunked"
        data = os.urandom(3 * 1024 * 1024 + 123)
        digest = sha256(data)
        r = client.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        offset = 0
        for size in (1024 * 1024, 1024 * 1024, len(data) - 2 * 1024 * 1024):
            chunk = data[offset : offset + size]
            r = client.request(
                "PATCH",
                location,
                data=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
            )
            assert r.status_code == 202, r.text
            offset += len(chunk)
            location = r.headers["Location"]
            assert r.headers["Range"] == f"0-{offset - 1}"
        r = client.request("PUT", location, params={"digest": digest})
        assert r.status_code == 201, r.text

        blob = f"/v2/{repo}/blobs/{digest}"
        r = client.request("GET", blob)
        assert r.status_code == 200 and sha256(r.content) == digest
        r = client.request("GET", blob, headers={"Range": "bytes=1048570-1048599"})
        assert r.status_code == 206 and r.content == data[1048570:1048600]
        assert any(n.endswith(digest.split(":")[1]) for n in objects_under(gcs_emulator, prefix))
    finally:
        server.stop()


def test_redirect_on_without_signing_credentials_streams(tmp_path, gcs_emulator):
    server, _ = gcs_server(tmp_path, gcs_emulator.url, gcs_emulator.bucket, redirect=True)
    try:
        client = RegistryClient(server.url, server.session())
        digest = client.push_blob("default/gcs/unsigned", b"no key to sign with")
        r = client.request("GET", f"/v2/default/gcs/unsigned/blobs/{digest}")
        assert r.status_code == 200 and r.content == b"no key to sign with"
    finally:
        server.stop()


def test_gcs_outage_is_a_503_oci_error(tmp_path, gcs_emulator):
    proxy = FaultyProxy(gcs_emulator.port)
    server, _ = gcs_server(tmp_path, proxy.url, gcs_emulator.bucket, redirect=False, query="?retry_timeout=2")
    try:
        client = RegistryClient(server.url, server.session())
        repo = "default/gcs/outage"
        digest = client.push_blob(repo, b"stored before the outage")

        proxy.fail(next=1, status=503)  # one transient failure: retried, unnoticed
        r = client.request("GET", f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200 and r.content == b"stored before the outage"

        proxy.fail(always=True, status=503)
        for method, path, kwargs in (
            ("GET", f"/v2/{repo}/blobs/{digest}", {}),
            ("POST", f"/v2/{repo}/blobs/uploads/", {"params": {"digest": sha256(b"x")}, "data": b"x"}),
        ):
            r = client.request(method, path, **kwargs)
            assert r.status_code == 503, (method, r.status_code, r.text)
            assert r.headers["Content-Type"].startswith("application/json")
            assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert r.headers.get("Retry-After")
        assert client.request("HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 200  # metadata only
        assert requests.get(server.url + "/readyz", timeout=30).status_code == 503
        assert "Traceback" not in server.logs()

        proxy.heal()
        assert client.push_blob(repo, b"after the outage") == sha256(b"after the outage")
        assert requests.get(server.url + "/readyz", timeout=30).status_code == 200
    finally:
        server.stop()
        proxy.close()
