"""Manifest GET/HEAD and blob HEAD answered on waitress's event-loop thread (app/server/inline.py;
on by default with SQLite): correct responses, pipelining kept in order, and answers while the
only request thread is busy with a push."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import threading
import time

import pytest
import requests

from tests.support.registry_client import RegistryClient
from tests.support.server import Server

MiB = 1024 * 1024


def _serve(tmp_path, inline: str) -> Server:
    return Server(
        tmp_path / f"data-{inline}",
        token="berth_" + secrets.token_urlsafe(32),
        env={"BERTH_THREADS": "1", "BERTH_INLINE_READS": inline},
    ).start()


def _raw(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def _auth(server: Server) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(f"admin:{server.token}".encode()) + b"\r\n"


@pytest.fixture
def pushed(tmp_path):
    server = _serve(tmp_path, "on")
    client = RegistryClient(server.url, server.session())
    digest, body, _ = client.push_image("default/app", "v1", layers=[b"layer-bytes" * 100])
    layer = client.request("GET", "/v2/default/app/manifests/v1").json()["layers"][0]["digest"]
    yield server, client, digest, layer
    server.stop()


def test_short_reads_answer_as_before(pushed):
    server, client, digest, layer = pushed
    r = client.request("GET", "/v2/default/app/manifests/v1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    assert hashlib.sha256(r.content).hexdigest() == digest.split(":")[1]
    assert client.request("HEAD", f"/v2/default/app/manifests/{digest}").headers["Docker-Content-Digest"] == digest
    assert client.request("HEAD", f"/v2/default/app/blobs/{layer}").headers["Content-Length"] == str(1100)
    assert client.request("GET", "/v2/default/app/manifests/nope").json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    anonymous = RegistryClient(server.url, server.session(token=None))
    assert anonymous.request("HEAD", "/v2/default/app/manifests/v1").status_code == 401


def test_pipelined_requests_keep_their_order(pushed):
    """Several requests in one write on one connection, inline ones and a blob GET (request
    threads) mixed: the responses come back in request order."""
    server, _, digest, layer = pushed
    auth = _auth(server)
    requests_ = [
        (b"HEAD", "/v2/default/app/manifests/v1"),
        (b"GET", f"/v2/default/app/blobs/{layer}"),
        (b"GET", f"/v2/default/app/manifests/{digest}"),
        (b"HEAD", f"/v2/default/app/blobs/{layer}"),
        (b"GET", "/v2/default/app/manifests/missing"),
    ]
    sock = _raw(server)
    sock.sendall(b"".join(m + b" " + p.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n" for m, p in requests_))
    heads = []
    buf = b""
    for method, _ in requests_:
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        heads.append(head)
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        need = 0 if method == b"HEAD" else length
        while len(buf) < need:
            buf += sock.recv(65536)
        buf = buf[need:]
    sock.close()
    statuses = [h.split(b"\r\n", 1)[0] for h in heads]
    assert statuses == [b"HTTP/1.1 200 OK"] * 4 + [b"HTTP/1.1 404 Not Found"], statuses
    assert b"Docker-Content-Digest: " + layer.encode() in heads[1]
    assert b"Docker-Content-Digest: " + digest.encode() in heads[2]


def test_a_manifest_is_answered_while_the_only_request_thread_is_busy(tmp_path):
    """BERTH_THREADS=1, and that thread held by an upload's chunk (too large to run inline)
    waiting for SQLite's write
    lock, which another connection to the database holds (as a `berth gc` or a VACUUM in another
    process would): a manifest HEAD on another connection is answered meanwhile; a small manifest
    PUT, run on the loop thread too, waits for the lock only LOOP_PATIENCE and is answered 503
    (retry), not after the 30 s a request thread waits; once the lock is free the chunk and the
    same PUT succeed."""
    import sqlite3

    from app.server.inline import LOOP_PATIENCE
    from app.services.uploads import INLINE_MOST
    from tests.support import postgres

    if postgres.ALL_SERVERS_ON_POSTGRES:
        pytest.skip("holds the SQLite database's write lock")
    server = _serve(tmp_path, "on")
    try:
        client = RegistryClient(server.url, server.session())
        _, _, manifest = client.push_image("default/app", "v1", layers=[b"small"])
        other = json.dumps({**manifest, "annotations": {"n": "2"}}).encode()
        location = client.request("POST", "/v2/default/app/blobs/uploads/").headers["Location"]
        order: list[str] = []
        holder = sqlite3.connect(server.data_dir / "berth.db", isolation_level=None, timeout=30)
        holder.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, held outside the server

        data = b"c" * (INLINE_MOST + 1)

        def chunk() -> None:
            r = RegistryClient(server.url, server.session()).request(
                "PATCH", location, data=data, headers={"Content-Range": f"0-{len(data) - 1}"}
            )
            order.append(f"chunk {r.status_code}")

        chunker = threading.Thread(target=chunk)
        chunker.start()
        time.sleep(0.5)  # the chunk reaches the one request thread and waits for the lock there
        assert order == []
        r = RegistryClient(server.url, server.session()).request("HEAD", "/v2/default/app/manifests/v1")
        order.append(f"head {r.status_code}")
        put = {"data": other, "headers": {"Content-Type": manifest["mediaType"]}}
        started = time.monotonic()
        refused = RegistryClient(server.url, server.session()).request("PUT", "/v2/default/app/manifests/v2", **put)
        waited = time.monotonic() - started
        assert refused.status_code == 503 and refused.json()["errors"][0]["code"] == "UNAVAILABLE", refused.text
        assert refused.headers["Retry-After"] == "1"
        assert LOOP_PATIENCE * 0.9 <= waited < LOOP_PATIENCE + 5, waited
        holder.execute("COMMIT")
        chunker.join(60)
        holder.close()
        assert order == ["head 200", "chunk 202"], order
        r = client.request("PUT", "/v2/default/app/manifests/v2", **put)
        assert r.status_code == 201, r.text
        assert '"status": 500' not in server.logs()
    finally:
        server.stop()


def test_small_uploads_are_answered_while_the_only_request_thread_is_busy(tmp_path):
    """BERTH_THREADS=1, and that thread held by a large chunk of session A waiting for A's file
    lock, which another process holds (here: this test). A small blob pushed meanwhile on a
    session of its own (POST, PUT with the bytes) runs on the loop and is stored. A small PUT on
    A is not taken by the loop, which would have to wait for A: it waits for the request thread
    (manifests are answered meanwhile), and closes A once the chunk is in. A small PATCH on a
    session whose lock another process holds, with no request of this process on it, runs on
    the loop and is answered 503 (retry) at once: the loop never waits for a session."""
    import fcntl

    from app.services.uploads import INLINE_MOST
    from tests.support import postgres

    if postgres.ALL_SERVERS_ON_POSTGRES:
        pytest.skip("small uploads run on the loop on SQLite only")
    server = _serve(tmp_path, "on")

    def session_of(location: str) -> str:
        return location.split("?")[0].rstrip("/").rsplit("/", 1)[1]

    def with_digest(location: str, digest: str) -> str:
        return f"{location}{'&' if '?' in location else '?'}digest={digest}"

    def hold(location: str) -> int:
        fd = os.open(server.data_dir / "storage" / "uploads" / f"{session_of(location)}.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    try:
        client = RegistryClient(server.url, server.session())
        client.push_image("default/app", "v1", layers=[b"small"])
        location = client.request("POST", "/v2/default/app/blobs/uploads/").headers["Location"]
        lock = hold(location)
        order: list[str] = []
        data = b"c" * (INLINE_MOST + 1)
        final = data + b"x"
        final_digest = "sha256:" + hashlib.sha256(final).hexdigest()

        def chunk() -> None:
            r = RegistryClient(server.url, server.session()).request(
                "PATCH", location, data=data, headers={"Content-Range": f"0-{len(data) - 1}"}
            )
            order.append(f"chunk {r.status_code}")

        def close() -> None:
            r = RegistryClient(server.url, server.session()).request(
                "PUT", with_digest(location, final_digest), data=b"x"
            )
            order.append(f"close {r.status_code}")

        chunker, closer = threading.Thread(target=chunk), threading.Thread(target=close)
        try:
            chunker.start()
            time.sleep(0.5)  # the chunk reaches the one request thread and waits for the lock there
            assert order == []
            small = b"a small config blob"
            digest = "sha256:" + hashlib.sha256(small).hexdigest()
            other = RegistryClient(server.url, server.session())
            started = other.request("POST", "/v2/default/app/blobs/uploads/")
            assert started.status_code == 202, started.text
            put = other.request("PUT", with_digest(started.headers["Location"], digest), data=small)
            assert put.status_code == 201, put.text
            order.append("small blob 201")
            closer.start()
            time.sleep(0.5)  # queued for the request thread, not waiting on the loop:
            begun = time.monotonic()
            head = other.request("HEAD", "/v2/default/app/manifests/v1")
            assert head.status_code == 200 and time.monotonic() - begun < 1.0
            assert order == ["small blob 201"]
        finally:
            os.close(lock)
            chunker.join(60)
            closer.join(60)
        assert order == ["small blob 201", "chunk 202", "close 201"], order
        assert client.request("GET", f"/v2/default/app/blobs/{digest}").content == small
        assert client.request("GET", f"/v2/default/app/blobs/{final_digest}").content == final

        elsewhere = client.request("POST", "/v2/default/app/blobs/uploads/").headers["Location"]
        lock = hold(elsewhere)  # another process's request on it
        try:
            begun = time.monotonic()
            refused = client.request("PATCH", elsewhere, data=b"y", headers={"Content-Range": "0-0"})
            assert refused.status_code == 503 and refused.json()["errors"][0]["code"] == "UNAVAILABLE", refused.text
            assert refused.headers["Retry-After"] == "1" and time.monotonic() - begun < 1.0
        finally:
            os.close(lock)
        taken = client.request("PATCH", elsewhere, data=b"y", headers={"Content-Range": "0-0"})
        assert taken.status_code == 202, taken.text
        assert '"status": 500' not in server.logs()
    finally:
        server.stop()


def test_a_small_upload_request_on_the_loop_is_checked_as_on_a_request_thread(tmp_path):
    """The loop looks a session's size up before the request is authorized; the request itself
    is then judged as anywhere else. A session's id under another repository's name, without
    credentials, with a malformed id or a wrong digest: refused in the protocol's own errors, the
    session untouched; then its owner finishes it."""
    from tests.support import postgres

    if postgres.ALL_SERVERS_ON_POSTGRES:
        pytest.skip("small uploads run on the loop on SQLite only")
    server = _serve(tmp_path, "on")
    try:
        client = RegistryClient(server.url, server.session())
        location = client.request("POST", "/v2/default/app/blobs/uploads/").headers["Location"]
        session = location.split("?")[0].rstrip("/").rsplit("/", 1)[1]
        data = b"a small blob"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()

        elsewhere = client.request("PATCH", f"/v2/default/other/blobs/uploads/{session}", data=b"x")
        assert elsewhere.status_code == 404, elsewhere.text
        assert elsewhere.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        anonymous = requests.put(f"{server.url}{location}", params={"digest": digest}, data=data, timeout=20)
        assert anonymous.status_code == 401 and anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"
        malformed = client.request("PUT", "/v2/default/app/blobs/uploads/not-a-session?digest=" + digest, data=data)
        assert malformed.status_code == 404, malformed.text
        wrong = "sha256:" + "0" * 64
        other = client.request("POST", "/v2/default/app/blobs/uploads/").headers["Location"]
        refused = client.request("PUT", f"{other}{'&' if '?' in other else '?'}digest={wrong}", data=data)
        assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "DIGEST_INVALID"

        status = client.request("GET", location)
        assert status.status_code == 204 and status.headers["Range"] == "0-0"  # untouched
        done = client.request("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", data=data)
        assert done.status_code == 201, done.text
        assert client.request("GET", f"/v2/default/app/blobs/{digest}").content == data
        assert '"status": 500' not in server.logs()
    finally:
        server.stop()


@pytest.mark.parametrize("request_line", [b"GARBAGE", b"GET", b"\x00\x01\x02 / HTTP/1.1"])
def test_a_request_waitress_cannot_parse_is_answered_not_dropped(tmp_path, request_line):
    """With inline reads on, a malformed request line (no method or path for the loop thread to
    look at) gets waitress's 400, not a closed connection and an error in the log."""
    server = _serve(tmp_path, "on")
    try:
        with _raw(server) as s:
            s.sendall(request_line + b"\r\n\r\n")
            answer = s.recv(100)
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n", 1)[0], answer
        assert "has no attribute" not in server.log_path.read_text()
    finally:
        server.stop()


def test_on_a_local_postgresql_the_loop_waits_for_a_lock_only_its_patience(tmp_path):
    """PostgreSQL at 127.0.0.1: short reads run on the loop (`auto`), on a connection whose
    statements the server cancels past LOOP_PATIENCE. A blob HEAD that must refresh the blob's
    `touched_at` while another session holds the row's lock (as a collection deciding about it
    would) is answered 503 (retry) after about that long, not when the lock goes; once it is
    free the same HEAD succeeds. A manifest push, left to the request threads there, still
    works."""
    import psycopg2

    from app.server.inline import LOOP_PATIENCE
    from tests.support import postgres

    url = postgres.create_database()
    server = Server(
        tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), database_url=url, env={"BERTH_THREADS": "1"}
    ).start()
    try:
        client = RegistryClient(server.url, server.session())
        _, _, manifest = client.push_image("default/app", "v1", layers=[b"locked layer"])
        layer = manifest["layers"][0]["digest"]
        postgres.sql(url, "UPDATE blob SET touched_at = now() - interval '1 day' WHERE digest = %s", (layer,))
        holder = psycopg2.connect(url)
        holder.cursor().execute("SELECT id FROM blob WHERE digest = %s FOR UPDATE", (layer,))  # held open
        started = time.monotonic()
        refused = client.request("HEAD", f"/v2/default/app/blobs/{layer}")
        waited = time.monotonic() - started
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1", refused.headers
        assert LOOP_PATIENCE * 0.9 <= waited < LOOP_PATIENCE + 3, waited
        assert "canceling statement due to statement timeout" in server.logs()
        holder.rollback()
        holder.close()
        assert client.request("HEAD", f"/v2/default/app/blobs/{layer}").status_code == 200
        other = json.dumps({**manifest, "annotations": {"n": "2"}}).encode()
        r = client.request(
            "PUT", "/v2/default/app/manifests/v2", data=other, headers={"Content-Type": manifest["mediaType"]}
        )
        assert r.status_code == 201, r.text
        assert '"status": 500' not in server.logs()
    finally:
        server.stop()
