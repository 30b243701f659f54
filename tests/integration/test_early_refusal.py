"""A request that will be refused costs no more than a socket read of its body, whatever body it
announces: it is decided on its line and headers, refused at once and its connection closed, so
an anonymous 300 MiB upload no longer puts 300 MiB into the spool before its 401. An authorized
upload still streams its body as before."""

from __future__ import annotations

import base64
import select
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.registry_client import RegistryClient, sha256

MiB = 1024 * 1024
BIG = 300 * MiB


class SpoolWatch:
    """The most bytes the server's spool directory held while it was watched."""

    def __init__(self, spool: Path) -> None:
        self.spool, self.peak, self._stop = spool, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            total = 0
            for path in self.spool.glob("*") if self.spool.is_dir() else ():
                try:
                    total += path.stat().st_size
                except FileNotFoundError:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.002)

    def __enter__(self) -> SpoolWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def send_big_body(
    server, method: str, path: str, headers: dict[str, str], size: int = BIG, chunked: bool = False
) -> tuple[bytes, int]:
    """Send a request announcing `size` bytes of body (or a chunked body of that size), then
    the body, as a client that reads the answer while it sends (Go's, curl) does: it stops
    sending once an answer arrives. Returns the answer's bytes and how much body was sent."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = f"{method} {path} HTTP/1.1\r\nHost: {server.host}\r\n{framing}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    chunk, sent = b"\0" * MiB, 0
    if chunked:
        chunk = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.sendall(head.encode())
        while sent < size and not select.select([s], [], [], 0)[0]:
            try:
                s.sendall(chunk)
            except OSError:  # closed by the server: read what it answered
                break
            sent += len(chunk)
        answer = b""
        try:
            while data := s.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def refused(server, method: str, path: str, headers: dict[str, str], chunked: bool = False) -> tuple[bytes, int]:
    with SpoolWatch(server.data_dir / "storage" / "spool") as spool:
        answer, _ = send_big_body(server, method, path, headers, chunked=chunked)
    return answer, spool.peak


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def puller(server) -> str:
    r = requests.post(
        f"{server.url}/api/v1/orgs/default/tokens",
        json={"name": "puller", "scope": "pull"},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_an_anonymous_300_mib_upload_is_refused_before_its_body_is_spooled(server):
    answer, peak = refused(server, "POST", "/v2/default/app/blobs/uploads/", {})
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b'www-authenticate: bearer realm="http://' in answer.lower()
    assert b'"UNAUTHORIZED"' in answer
    assert peak < MiB, f"{peak} bytes spooled for a refused request"


def test_an_upload_with_bad_credentials_is_refused_before_its_body_is_spooled(server):
    answer, peak = refused(server, "POST", "/v2/default/app/blobs/uploads/", {"Authorization": basic("x", "wrong")})
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert peak < MiB


def test_an_upload_by_a_caller_without_push_rights_is_refused_before_its_body_is_spooled(server, puller):
    answer, peak = refused(server, "POST", "/v2/default/app/blobs/uploads/", {"Authorization": basic("ci", puller)})
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
    assert b'"DENIED"' in answer
    assert peak < MiB


def test_a_chunk_sent_to_an_upload_by_a_caller_without_push_rights_is_refused_before_it_is_spooled(server, puller):
    started = server.session().post(f"{server.url}/v2/default/app/blobs/uploads/", timeout=10)
    assert started.status_code == 202
    answer, peak = refused(server, "PATCH", started.headers["Location"], {"Authorization": basic("ci", puller)})
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
    assert peak < MiB


def test_a_big_body_to_the_management_api_with_bad_credentials_is_refused_before_it_is_spooled(server):
    answer, peak = refused(server, "POST", "/api/v1/orgs/default/registries", {"Authorization": "Bearer nope"})
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"application/problem+json" in answer
    assert peak < MiB


def test_a_big_body_to_an_unknown_path_or_a_public_endpoint_is_refused_before_it_is_spooled(server):
    answer, peak = refused(server, "POST", "/nowhere", {})
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:200]
    assert peak < MiB
    answer, peak = refused(server, "POST", "/auth/token", {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert peak < MiB


def test_a_chunked_body_to_a_public_endpoint_is_cut_off_after_a_mebibyte(server):
    answer, peak = refused(
        server, "POST", "/auth/token", {"Content-Type": "application/x-www-form-urlencoded"}, chunked=True
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert peak < 2 * MiB


def test_a_chunked_token_request_is_answered_as_podman_sends_it(server):
    form = f"grant_type=password&username=ci&password={server.token}&service={server.host}&client_id=podman"
    r = requests.post(
        f"{server.url}/auth/token",
        data=iter([form.encode()]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


def test_a_pull_with_a_big_body_is_refused_before_it_is_spooled(server):
    answer, peak = refused(
        server, "GET", "/v2/default/app/manifests/latest", {"Authorization": basic("a", server.token)}
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert peak < MiB


def test_a_refused_client_that_waits_for_100_continue_gets_the_refusal_instead(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            f"PUT /v2/default/app/blobs/uploads/x HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Content-Length: {BIG}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]


def test_an_authorized_upload_streams_its_big_body_in_every_form(server, repo_name):
    client = RegistryClient(server.url, server.session())
    body = bytes(range(256)) * (12 * MiB // 256)
    digest = sha256(body)
    # Monolithic (Content-Length past the preflight threshold, with Expect: 100-continue)...
    r = client.request(
        "POST",
        f"/v2/{repo_name}/blobs/uploads/",
        params={"digest": digest},
        data=body,
        headers={"Content-Type": "application/octet-stream", "Expect": "100-continue"},
    )
    assert r.status_code == 201, r.text
    # ...and a chunked transfer encoding PATCH, as Docker sends a layer.
    started = client.request("POST", f"/v2/{repo_name}/blobs/uploads/")
    r = client.request("PATCH", started.headers["Location"], data=(body[i : i + MiB] for i in range(0, len(body), MiB)))
    assert r.status_code == 202, r.text
    r = client.request("PUT", r.headers["Location"], params={"digest": digest})
    assert r.status_code == 201, r.text
    assert client.request("GET", f"/v2/{repo_name}/blobs/{digest}").content == body
