"""Idle and slow clients cannot lock others out: with a thousand idle and slowloris connections
open a new client is still answered, a request's headers must arrive within the header timeout,
and an idle keep-alive connection is closed after the keep-alive timeout."""

from __future__ import annotations

import secrets
import socket
import threading
import time

import pytest
import requests

from tests.support.registry_client import OCI_MANIFEST, RegistryClient
from tests.support.server import Server

HOLD = 1000
BOUND = 60  # seconds: only bounds a hang; the settings under test are a few seconds


class Crowd:
    """HOLD connections to the server: half idle (connected, silent), half slowloris (a request
    whose headers never end, one header byte every two seconds)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[socket.socket] = []
        self.slow: list[socket.socket] = []
        self._stop = threading.Event()
        self._dripper = threading.Thread(target=self._drip, daemon=True)

    def __enter__(self) -> Crowd:
        for i in range(HOLD):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            if i % 2:
                s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-")
                self.slow.append(s)
            else:
                self.idle.append(s)
        self._dripper.start()
        return self

    def _drip(self) -> None:
        while not self._stop.wait(2):
            for s in self.slow:
                try:
                    s.send(b"a")
                except OSError:
                    pass

    def still_open(self) -> int:
        count = 0
        for s in self.idle + self.slow:
            s.setblocking(False)
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                    count += 1  # something to read: not closed
            except BlockingIOError:
                count += 1
            except OSError:
                pass
        return count

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._dripper.join()
        for s in self.idle + self.slow:
            s.close()


def start(tmp_path, **env: str) -> Server:
    return Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env=env).start()


def new_client_is_answered(server: Server, repo: str) -> None:
    s = requests.Session()
    s.auth = ("admin", server.token)
    assert s.get(f"{server.url}/v2/", timeout=BOUND).status_code == 200
    r = s.get(f"{server.url}/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=BOUND)
    assert r.status_code == 200, r.text


@pytest.fixture
def crowded(tmp_path):
    servers = []

    def make(**env: str) -> tuple[Server, str]:
        server = start(tmp_path, **env)
        servers.append(server)
        repo = "default/crowd"
        RegistryClient(server.url, server.session()).push_image(repo, "v1")
        return server, repo

    yield make
    for server in servers:
        server.stop()


def test_a_new_client_is_answered_while_a_thousand_idle_and_slowloris_connections_are_open(crowded):
    # Timeouts far beyond the test, so every connection of the crowd stays open throughout.
    server, repo = crowded(BERTH_HEADER_TIMEOUT="600", BERTH_KEEPALIVE_TIMEOUT="600")
    with Crowd(server.port) as crowd:
        new_client_is_answered(server, repo)
        assert crowd.still_open() == HOLD


def test_past_the_connection_ceiling_the_longest_idle_connection_makes_room_for_a_new_client(crowded):
    server, repo = crowded(BERTH_HEADER_TIMEOUT="600", BERTH_KEEPALIVE_TIMEOUT="600", BERTH_MAX_CONNECTIONS="100")
    with Crowd(server.port) as crowd:
        new_client_is_answered(server, repo)
        assert crowd.still_open() <= 100


def closed_by_server(s: socket.socket, keep_sending: bytes = b"") -> bool:
    """Whether the server closes `s` within BOUND seconds (sending `keep_sending` every half
    second meanwhile)."""
    s.settimeout(0.5)
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            if keep_sending:
                s.sendall(keep_sending)
            if s.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset
            return True
    return False


def test_a_slowloris_connection_is_closed_after_the_header_timeout(tmp_path):
    server = start(tmp_path, BERTH_HEADER_TIMEOUT="2", BERTH_KEEPALIVE_TIMEOUT="600")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
            assert closed_by_server(s, keep_sending=b"X-a: b\r\n")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as silent:
            assert closed_by_server(silent)
        assert requests.get(f"{server.url}/healthz", timeout=BOUND).status_code == 200
    finally:
        server.stop()


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(tmp_path):
    server = start(tmp_path, BERTH_HEADER_TIMEOUT="600", BERTH_KEEPALIVE_TIMEOUT="2")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
            assert closed_by_server(s)
    finally:
        server.stop()
