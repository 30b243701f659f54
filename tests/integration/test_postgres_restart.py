"""A real PostgreSQL restart under a running Berth: a private cluster (initdb, pg_ctl, run as the
`postgres` user) is restarted, and stopped for a few seconds, between and during pushes and
pulls. Requests after it comes back succeed without the client retrying; requests while it is
down are answered 503 UNAVAILABLE with Retry-After (never 500). Stopped for longer, with many
requests at once: test_postgres_outage.py."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.private_postgres import running_cluster
from tests.support.registry_client import RegistryClient
from tests.support.server import Server
from tests.support.waiting import until

OWNER = "berth_" + "r" * 43


@pytest.fixture
def setup(tmp_path):
    with running_cluster() as cluster:
        server = Server(tmp_path / "data", token=OWNER, env={"BERTH_DATABASE_URL": cluster.url}).start()
        try:
            yield cluster, server, RegistryClient(server.url, server.session())
        finally:
            server.stop()


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
    time.sleep(5)  # an outage, not a blip: far longer than a request's reconnect attempts
    during = len(statuses)
    cluster.pg_ctl("start")
    until(lambda: 200 in statuses[during:], seconds=30, what="a pull succeeds after the restart")
    stop.set()
    puller.join(60)
    assert 503 in statuses and 200 in statuses, sorted(set(statuses))
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert "" not in retry_after
    assert statuses[-1] == 200
    _, _, _ = client.push_image("default/app", "v2", layers=[b"after the outage"])
    assert client.request("GET", "/v2/default/app/tags/list").json()["tags"] == ["v1", "v2"]
    assert '"status": 500' not in server.logs()
