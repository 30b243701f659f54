"""A real PostgreSQL restart under a running Berth: a private cluster (initdb, pg_ctl, run as the
`postgres` user) is restarted, and stopped for a few seconds, between and during pushes and
pulls. Requests after it comes back succeed without the client retrying; requests while it is
down are answered 503 UNAVAILABLE with Retry-After (never 500), or succeed once it is back within
the server's reconnect window."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.support.components import IN_CI
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

OWNER = "berth_" + "r" * 43


def _pg_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or not shutil.which("runuser") or os.geteuid() != 0:
        message = "a private PostgreSQL cluster needs the server binaries (apt-get install postgresql) and root"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root, port: int) -> None:
        self.bin, self.root, self.port = _pg_bin(), root, port
        self.data = root / "pgdata"
        root.mkdir(parents=True, exist_ok=True)
        shutil.chown(root, "postgres", "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _as_postgres(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", f"{self.bin}/{tool}", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def pg_ctl(self, action: str, *extra: str) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "pg.log"),
                          "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                          action, *extra)


@pytest.fixture
def setup(tmp_path):
    # Somewhere the postgres user can reach (pytest's tmp_path is private to root).
    pg_root = Path(tempfile.mkdtemp(prefix="berth-pg-", dir="/var/tmp"))
    os.chmod(pg_root, 0o755)
    cluster = Cluster(pg_root / "cluster", _free_port())
    cluster.pg_ctl("start")
    server = Server(tmp_path / "data", token=OWNER, env={"BERTH_DATABASE_URL": cluster.url}).start()
    try:
        yield cluster, server, RegistryClient(server.url, server.session())
    finally:
        server.stop()
        try:
            cluster.pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(pg_root, ignore_errors=True)


def test_requests_after_a_restart_succeed_without_retrying(setup):
    cluster, server, client = setup
    client.push_image("default/app", "v1", layers=[b"before the restart"])
    for round_ in range(3):
        cluster.pg_ctl("restart", "-m", "fast")  # every server connection is cut
        r = client.request("GET", "/v2/default/app/manifests/v1")
        assert r.status_code == 200, r.text
        _, _, manifest = client.push_image("default/app", f"after-{round_}", layers=[f"after {round_}".encode()])
        assert client.request("HEAD", f"/v2/default/app/manifests/after-{round_}").status_code == 200
    assert client.request("GET", "/v2/default/app/tags/list").json()["tags"] == ["after-0", "after-1", "after-2", "v1"]
    assert '"status": 500' not in server.logs()


def test_requests_while_it_is_down_get_503_then_succeed(setup):
    cluster, server, client = setup
    client.push_image("default/app", "v1", layers=[b"layer"])
    cluster.pg_ctl("stop", "-m", "fast")
    statuses: list[int] = []
    retry_after: set[str] = set()
    stop = threading.Event()

    def pull() -> None:
        while not stop.is_set():
            r = client.request("GET", "/v2/default/app/manifests/v1")
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
                retry_after.add(r.headers.get("Retry-After", ""))

    puller = threading.Thread(target=pull)
    puller.start()
    time.sleep(10)  # longer than the server's reconnect window (about 7 s)
    cluster.pg_ctl("start")
    time.sleep(2)
    stop.set()
    puller.join(60)
    assert 503 in statuses and 200 in statuses, sorted(set(statuses))
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert "" not in retry_after
    assert statuses[-1] == 200
    _, _, _ = client.push_image("default/app", "v2", layers=[b"after the outage"])
    assert client.request("GET", "/v2/default/app/tags/list").json()["tags"] == ["v1", "v2"]
    assert '"status": 500' not in server.logs()
