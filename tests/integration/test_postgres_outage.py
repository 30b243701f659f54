"""PostgreSQL down under a running Berth (a private cluster the test stops): every request that
needs the database is answered 503 UNAVAILABLE with Retry-After at once, however many arrive
together, instead of queueing behind one another's reconnect attempts; liveness never asks the
database, readiness says no quickly; and when the database is back, so is Berth, untouched.
Underneath: a connect that hangs holds up no other thread (a proxy that stalls connects, in front
of the shared PostgreSQL).

The bounds below only catch a hang (they are many times what an answer takes); no timing is
asserted."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse, urlunparse

import pytest
import requests

from app.db.setup import DatabaseUnavailable, database_for
from tests.support import postgres
from tests.support.private_postgres import running_cluster
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

OWNER = "berth_" + "d" * 43
HANG = 10  # seconds: an answer later than this is a hang


@pytest.fixture
def setup(tmp_path):
    with running_cluster() as cluster:
        server = Server(tmp_path / "data", token=OWNER, env={"BERTH_DATABASE_URL": cluster.url}).start()
        try:
            client = RegistryClient(server.url, server.session())
            client.push_image("default/app", "v1", layers=[b"before the outage"])
            yield cluster, server, client
        finally:
            server.stop()


def _api_get(server: Server) -> requests.Response:
    return requests.get(
        f"{server.url}/api/v1/orgs/default/registries", timeout=HANG, headers={"Authorization": f"Bearer {OWNER}"}
    )


def _assert_unavailable(r: requests.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers.get("Retry-After", "").isdigit(), r.headers
    body = r.json()
    code = body["code"] if "code" in body else body["errors"][0]["code"]
    assert code == "UNAVAILABLE", body


def test_while_postgresql_is_down_requests_get_503_with_retry_after_and_liveness_stays_up(setup):
    cluster, server, client = setup
    cluster.pg_ctl("stop", "-m", "fast")
    with ThreadPoolExecutor(23) as pool:
        tag_lists = [pool.submit(client.request, "GET", "/v2/default/app/tags/list", timeout=HANG) for _ in range(20)]
        manifest = pool.submit(client.request, "GET", "/v2/default/app/manifests/v1", timeout=HANG)
        api = pool.submit(_api_get, server)
        # While those are in flight: liveness answers (it never asks the database) ...
        health = requests.get(f"{server.url}/healthz", timeout=HANG)
        assert health.status_code == 200, health.text
        for future in [*tag_lists, manifest, api]:
            _assert_unavailable(future.result())
    assert manifest.result().json()["errors"][0]["code"] == "UNAVAILABLE"  # the OCI envelope on /v2
    assert api.result().headers["Content-Type"].startswith("application/problem+json")  # problem JSON on /api
    # ... and readiness says no.
    ready = requests.get(f"{server.url}/readyz", timeout=HANG)
    assert ready.status_code == 503, ready.text
    assert requests.get(f"{server.url}/healthz", timeout=HANG).status_code == 200


def test_when_postgresql_is_back_everything_works_without_a_server_restart(setup):
    cluster, server, client = setup
    cluster.pg_ctl("stop", "-m", "fast")
    _assert_unavailable(client.request("GET", "/v2/default/app/tags/list", timeout=HANG))
    assert requests.get(f"{server.url}/readyz", timeout=HANG).status_code == 503
    cluster.pg_ctl("start")
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/readyz", timeout=HANG).status_code != 200:
        assert time.monotonic() < deadline, "readiness did not come back"
        time.sleep(0.2)
    assert client.request("GET", "/v2/default/app/tags/list").json()["tags"] == ["v1"]
    assert client.request("GET", "/v2/default/app/manifests/v1").status_code == 200
    assert _api_get(server).status_code == 200
    client.push_image("default/app", "v2", layers=[b"after the outage"])
    assert client.request("GET", "/v2/default/app/tags/list").json()["tags"] == ["v1", "v2"]
    assert '"status": 500' not in server.logs()


class StallingProxy:
    """A TCP proxy to PostgreSQL that, once `stall()` is called, accepts new connections and
    never answers them: a server that hangs in the connect handshake."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stalled: list[socket.socket] = []
        self.stalling = False
        self.stalled_one = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.stalling = True

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; later connects are refused
        except OSError:
            pass
        self.listener.close()
        for conn in self.stalled:
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.stalling:
                self.stalled.append(client)
                self.stalled_one.set()
                continue
            server = socket.create_connection(self.upstream)
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_a_connect_that_hangs_holds_up_no_other_thread_using_the_pool():
    """peewee opens connections under a process-wide lock; Berth must not: while one thread waits
    on a server that does not answer its connect, another runs statements, gives its connection
    back and takes it out again."""
    database_url = postgres.create_database()
    parsed = urlparse(database_url)
    proxy = StallingProxy((parsed.hostname, parsed.port or 5432))
    # connect_timeout: the stalled connect outlasts the other thread's work by far, unless the
    # stall is lifted (closed) first, as below.
    db = database_for(
        urlunparse(parsed._replace(netloc=f"{parsed.username}@127.0.0.1:{proxy.port}")) + "?connect_timeout=60"
    )
    try:
        connected, go_on = threading.Event(), threading.Event()
        connecting_ended = threading.Event()
        answers: list[tuple] = []

        def use_the_pool() -> None:
            answers.append(db.execute_sql("SELECT 1").fetchone())  # a connection of its own
            connected.set()
            go_on.wait(HANG)
            answers.append(db.execute_sql("SELECT 2").fetchone())
            db.close()  # back to the pool ...
            answers.append(db.execute_sql("SELECT 3").fetchone())  # ... and out again
            db.close()

        def connect_through_the_stall() -> None:
            try:
                db.execute_sql("SELECT 1")  # the pool is empty: a new connection
            except DatabaseUnavailable:
                pass
            finally:
                connecting_ended.set()

        user = threading.Thread(target=use_the_pool, daemon=True)
        user.start()
        assert connected.wait(HANG)
        proxy.stall()
        threading.Thread(target=connect_through_the_stall, daemon=True).start()
        assert proxy.stalled_one.wait(HANG)  # that thread is inside its connect now
        go_on.set()
        user.join(HANG)
        assert answers == [(1,), (2,), (3,)]
        assert not connecting_ended.is_set()  # all of it while the connect still hung
    finally:
        go_on.set()
        proxy.close()  # the stalled connect fails now
        assert connecting_ended.wait(HANG)
        db.close_all()
