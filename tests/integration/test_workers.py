"""`berth serve --workers N`: several processes on one port behave as one registry (uploads
move between them, one upload's chunks exclude each other across processes), a worker that
dies is replaced, and none outlives the supervisor."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.registry_client import RegistryClient, sha256
from tests.support.server import Server

MiB = 1024 * 1024


def children(pid: int) -> list[int]:
    """The supervisor's worker processes."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


@pytest.fixture
def srv(tmp_path):
    server = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env={"BERTH_WORKERS": "2"}).start()
    yield server
    server.stop()


def fresh_client(server: Server) -> RegistryClient:
    """A new connection each time: the kernel hands it to either worker."""
    s = server.session()
    s.headers["Connection"] = "close"
    return RegistryClient(server.url, s)


def test_two_workers_serve_one_registry(srv):
    assert len(children(srv.process.pid)) == 2
    for _ in range(40):
        r = requests.get(f"{srv.url}/healthz", headers={"Connection": "close"}, timeout=10)
        assert r.status_code == 200
    # A chunked upload whose every request is a new connection, so chunks land on both workers.
    data = secrets.token_bytes(6 * MiB)
    location = fresh_client(srv).request("POST", "/v2/default/w/app/blobs/uploads/").headers["Location"]
    for start in range(0, len(data), MiB):
        chunk = data[start : start + MiB]
        r = fresh_client(srv).request(
            "PATCH", location, data=chunk, headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"}
        )
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
    r = fresh_client(srv).request("PUT", location, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert fresh_client(srv).request("GET", f"/v2/default/w/app/blobs/{sha256(data)}").content == data


def test_one_uploads_chunks_exclude_each_other_across_workers(srv):
    """Two different first chunks for one upload, sent at once on new connections, many times:
    exactly one is taken each time and the blob is exactly its bytes."""
    for _ in range(6):
        location = fresh_client(srv).request("POST", "/v2/default/w/race/blobs/uploads/").headers["Location"]
        bodies = [secrets.token_bytes(4 * MiB), secrets.token_bytes(4 * MiB)]
        barrier = threading.Barrier(2)

        def send(i: int):
            barrier.wait()
            return fresh_client(srv).request(
                "PATCH", location, data=bodies[i], headers={"Content-Range": f"0-{4 * MiB - 1}"}
            )

        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(send, range(2)))
        codes = [r.status_code for r in responses]
        assert sorted(codes)[0] == 202 and sorted(codes)[1] in (400, 416), [(r.status_code, r.text) for r in responses]
        winner = bodies[codes.index(202)]
        r = fresh_client(srv).request("PUT", location, params={"digest": sha256(winner)})
        assert r.status_code == 201, r.text


def test_a_dead_worker_is_replaced_and_none_outlives_the_supervisor(srv):
    first = children(srv.process.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = children(srv.process.pid)
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.1)
    assert len(now) == 2 and first[0] not in now
    c = fresh_client(srv)
    c.push_image("default/w/after", "v1")
    assert c.request("GET", "/v2/default/w/after/manifests/v1").status_code == 200
    srv.kill()  # kill -9 of the supervisor: its workers follow
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in now):
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z" for pid in now)


def test_workers_on_a_fresh_data_dir_share_one_signing_key(tmp_path):
    """Both workers start together on an empty data dir: a registry token that one of them
    issued must be accepted by the other at once (they once each made a key of their own)."""
    server = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env={"BERTH_WORKERS": "2"}).start()
    try:
        assert len(list((tmp_path / "data").rglob("*.pem"))) == 1
        statuses = []
        for _ in range(30):
            r = requests.get(
                f"{server.url}/auth/token",
                params={"scope": "repository:default/x:pull"},
                auth=("admin", server.token),
                headers={"Connection": "close"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            check = requests.get(
                f"{server.url}/v2/default/x/tags/list",
                timeout=10,
                headers={"Authorization": f"Bearer {r.json()['token']}", "Connection": "close"},
            )
            statuses.append(check.status_code)
        assert set(statuses) == {404}, statuses  # NAME_UNKNOWN: authorized, nothing pushed yet
    finally:
        server.stop()


def _established_per_worker(server: Server) -> list[int]:
    """How many established connections to the server's port each worker process holds (from
    /proc: its socket fds, matched with /proc/net/tcp)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == server.port and fields[3] == "01":
                    inodes.add(fields[9])
    counts = []
    for pid in children(server.process.pid):
        fds = os.listdir(f"/proc/{pid}/fd")
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds if os.path.exists(f"/proc/{pid}/fd/{fd}")]
        counts.append(sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes))
    return counts


def test_a_burst_of_connections_is_spread_over_the_workers(srv):
    """32 keep-alive connections opened in one burst, as a load generator opens them: each
    worker gets a fair share (the kernel's SO_REUSEPORT hashing), not whatever one worker
    grabbed first (with one shared socket, 15 of 16 went to one worker)."""
    import socket

    for _attempt in range(3):  # each attempt: a fresh burst
        conns = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(32)]
        for c in conns:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        counts = _established_per_worker(srv)
        for c in conns:
            c.close()
        assert sum(counts) == 32, counts
        assert min(counts) >= 6, counts  # binomial(32, 1/2): below 6 or above 26 about once in 10,000
        time.sleep(0.2)
