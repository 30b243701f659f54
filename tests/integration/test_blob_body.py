"""Blob GETs through the real server to a slow reader (app/server/blob_body.py): the bytes come
out whole and in order, ranges stop where they should, and the server reads each byte of the
blob from its file about once, however little of each read the socket takes (waitress's own
file wrapper read the rest again at every writable event)."""

from __future__ import annotations

import base64
import secrets
import socket
import time

from tests.support.registry_client import RegistryClient

MiB = 1024 * 1024


def read_chars(pid: int) -> int:
    """Bytes the process has read through read(2) and friends (/proc/<pid>/io `rchar`)."""
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def slow_get(server, path: str, headers: dict[str, str] | None = None) -> tuple[bytes, bytes]:
    """GET `path` with a small receive buffer, reading a little at a time; (head, body)."""
    auth = base64.b64encode(f"admin:{server.token}".encode()).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {server.host}", f"Authorization: Basic {auth}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    host, port = server.host.rsplit(":", 1)
    sock.connect((host, int(port)))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    received = bytearray()
    sock.settimeout(60)
    while chunk := sock.recv(64 * 1024):
        received += chunk
        time.sleep(0.0005)
    sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    return head, body


def test_a_slow_puller_gets_the_blob_whole_and_the_server_reads_it_once(fresh_server):
    server = fresh_server.start()
    client = RegistryClient(server.url, server.session())
    data = secrets.token_bytes(24 * MiB + 7)
    digest = client.push_blob("default/slow", data)
    before = read_chars(server.process.pid)
    head, body = slow_get(server, f"/v2/default/slow/blobs/{digest}")
    read = read_chars(server.process.pid) - before
    assert head.startswith(b"HTTP/1.1 200") and body == data
    assert read < 1.2 * len(data), f"the server read {read / len(data):.2f}x the blob to send it once"


def test_a_range_ends_where_asked(fresh_server):
    server = fresh_server.start()
    client = RegistryClient(server.url, server.session())
    data = secrets.token_bytes(3 * MiB + 11)
    digest = client.push_blob("default/slow", data)
    head, body = slow_get(server, f"/v2/default/slow/blobs/{digest}", {"Range": f"bytes={MiB - 5}-{2 * MiB + 2}"})
    assert head.startswith(b"HTTP/1.1 206") and body == data[MiB - 5 : 2 * MiB + 3]
