"""A TLS handshake on the plain-HTTP port is refused at once (clients then fall back to HTTP)
instead of hanging until the client's handshake timeout."""

from __future__ import annotations

import socket
import ssl

import pytest


def test_tls_client_hello_gets_an_immediate_refusal(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 32)
        reply = s.recv(4096)  # a hang would raise socket.timeout here
    assert reply.startswith(b"HTTP/1.0 400 Bad Request")
    assert b"plain-HTTP" in reply


def test_python_tls_client_fails_fast(server):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(s)


def test_plain_http_still_works_on_the_same_port(server):
    import requests

    assert requests.get(f"{server.url}/v2/", auth=("a", server.token), timeout=5).status_code == 200
