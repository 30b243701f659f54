"""Uploads survive `kill -9`; concurrent pushes of one blob or one tag lose and corrupt nothing."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support.registry_client import RegistryClient, sha256


def test_chunked_upload_resumes_after_kill_9(fresh_server):
    server = fresh_server.start()
    client = RegistryClient(server.url, server.session())
    data = secrets.token_bytes(3 * 1024 * 1024 + 17)
    head, tail = data[: 2 * 1024 * 1024], data[2 * 1024 * 1024 :]
    location = client.request("POST", "/v2/default/resume/blobs/uploads/").headers["Location"]
    r = client.request("PATCH", location, data=head, headers={"Content-Range": f"0-{len(head) - 1}"})
    assert r.status_code == 202

    server.kill()
    server.start()

    r = client.request("GET", location)
    assert r.status_code == 204 and r.headers["Range"] == f"0-{len(head) - 1}"
    r = client.request("PATCH", location, data=tail, headers={"Content-Range": f"{len(head)}-{len(data) - 1}"})
    assert r.status_code == 202, r.text
    r = client.request("PUT", r.headers["Location"], params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert client.request("GET", f"/v2/default/resume/blobs/{sha256(data)}").content == data


def _send_slowly(port: int, token: str, path: str, body_size: int, stop: threading.Event) -> None:
    import base64

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest("POST", path)
    conn.putheader("Authorization", "Basic " + base64.b64encode(f"a:{token}".encode()).decode())
    conn.putheader("Content-Length", str(body_size))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    chunk = b"\0" * (1024 * 1024)
    try:
        for _ in range(body_size // len(chunk)):
            if stop.is_set():
                break
            conn.send(chunk)
        conn.getresponse()
    except OSError:
        pass  # the server died under us: that is the point


def test_upload_interrupted_by_kill_9_leaves_no_visible_blob(fresh_server):
    """Kill the server while it writes a monolithic upload, then push again: nothing half-written
    is ever served, and the retry succeeds."""
    server = fresh_server.start()
    client = RegistryClient(server.url, server.session())
    size = 512 * 1024 * 1024
    digest = "sha256:" + __import__("hashlib").sha256(b"\0" * size).hexdigest()
    stop = threading.Event()
    sender = threading.Thread(
        target=_send_slowly,
        args=(server.port, server.token, f"/v2/default/killed/blobs/uploads/?digest={digest}", size, stop),
    )
    sender.start()
    uploads = server.data_dir / "storage" / "uploads"
    deadline = time.monotonic() + 120
    # Wait until the application is writing the upload (waitress has buffered the body).
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in uploads.iterdir()):
            break
        time.sleep(0.005)
    else:
        raise AssertionError("the upload never reached storage")
    server.kill()
    stop.set()
    sender.join(30)

    server.start()
    r = client.request("HEAD", f"/v2/default/killed/blobs/{digest}")
    assert r.status_code == 404
    blobs = server.data_dir / "storage" / "blobs"
    assert not [p for p in blobs.rglob("*") if p.is_file()]

    data = secrets.token_bytes(1024 * 1024)
    client.push_blob("default/killed", data)
    assert client.request("GET", f"/v2/default/killed/blobs/{sha256(data)}").content == data


def test_concurrent_pushes_of_the_same_blob(server, repo_name):
    data = secrets.token_bytes(4 * 1024 * 1024)
    digest = sha256(data)

    def push(i: int) -> int:
        client = RegistryClient(server.url, server.session())
        repo = f"{repo_name}-{i % 3}"
        location = client.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
        for start in range(0, len(data), 1024 * 1024):
            part = data[start : start + 1024 * 1024]
            r = client.request(
                "PATCH", location, data=part, headers={"Content-Range": f"{start}-{start + len(part) - 1}"}
            )
            assert r.status_code == 202, r.text
            location = r.headers["Location"]
        return client.request("PUT", location, params={"digest": digest}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(push, range(8))) == [201] * 8
    client = RegistryClient(server.url, server.session())
    for i in range(3):
        assert client.request("GET", f"/v2/{repo_name}-{i}/blobs/{digest}").content == data


def test_concurrent_pushes_of_the_same_tag(server, repo_name):
    client = RegistryClient(server.url, server.session())
    _, _, manifest = client.push_image(repo_name, "seed")
    bodies = [json.dumps({**manifest, "annotations": {"n": str(i)}}).encode() for i in range(16)]

    def push(body: bytes) -> int:
        c = RegistryClient(server.url, server.session())
        return c.push_manifest(repo_name, "race", body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(push, bodies)) == [201] * 16
    winner = client.request("GET", f"/v2/{repo_name}/manifests/race")
    assert winner.status_code == 200 and winner.content in bodies
    assert winner.headers["Docker-Content-Digest"] == sha256(winner.content)
    for body in bodies:
        assert client.request("GET", f"/v2/{repo_name}/manifests/{sha256(body)}").content == body
    assert client.request("GET", f"/v2/{repo_name}/tags/list").json()["tags"] == ["race", "seed"]


def test_large_bodies_are_taken_over_from_the_spool_and_nothing_is_left_behind(fresh_server):
    """Bodies past waitress's in-memory limit are spooled on the blob store's filesystem and
    linked into the upload (app/server/spool.py); every path must still verify and clean up."""
    server = fresh_server.start()
    client = RegistryClient(server.url, server.session())
    spool = server.data_dir / "storage" / "spool"
    data = secrets.token_bytes(6 * 1024 * 1024 + 5)
    # Monolithic PUT (adopted), a bad digest (adopted, then refused), chunks (first adopted, rest appended).
    client.push_blob("default/spool", data)
    location = client.request("POST", "/v2/default/spool/blobs/uploads/").headers["Location"]
    r = client.request("PUT", location, params={"digest": sha256(b"other")}, data=data)
    assert r.status_code == 400
    more = secrets.token_bytes(3 * 1024 * 1024)
    location = client.request("POST", "/v2/default/spool/blobs/uploads/").headers["Location"]
    r = client.request(
        "PATCH", location, data=more[: 2 * 1024 * 1024], headers={"Content-Range": f"0-{2 * 1024 * 1024 - 1}"}
    )
    r = client.request(
        "PATCH",
        r.headers["Location"],
        data=more[2 * 1024 * 1024 :],
        headers={"Content-Range": f"{2 * 1024 * 1024}-{len(more) - 1}"},
    )
    r = client.request("PUT", r.headers["Location"], params={"digest": sha256(more)})
    assert r.status_code == 201
    assert client.request("GET", f"/v2/default/spool/blobs/{sha256(data)}").content == data
    assert client.request("GET", f"/v2/default/spool/blobs/{sha256(more)}").content == more
    assert spool.is_dir() and not list(spool.rglob("body-*"))
    assert not list((server.data_dir / "storage" / "uploads").iterdir())
