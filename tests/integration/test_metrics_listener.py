"""`/metrics` names every tenant, so it is served only on a listener of its own
(BERTH_METRICS_ADDR), never on the public port that every registry hostname reaches. That
listener serves nothing else, and with `--workers N` any scrape reports the whole server, not
the worker that happened to answer it. The probes on the public port name no tenant either."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import requests

from tests.support.server import ROOT, Server, free_port

OWNER = "berth_metrics_listener_owner_0123456789"
TENANT = "acme-hidden-tenant"


def scraped_count(text: str, **labels) -> float | None:
    """The value of the berth_http_requests_total series with exactly these labels."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^berth_http_requests_total{{{re.escape(wanted)}}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def listening_ports(pid: int) -> set[int]:
    """TCP ports on which this process or its children (workers) listen, read from /proc."""
    pids = [pid]
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        pids += [int(x) for x in f.read().split()]
    inodes = set()
    for p in pids:
        for fd in os.listdir(f"/proc/{p}/fd"):
            try:
                target = os.readlink(f"/proc/{p}/fd/{fd}")
            except FileNotFoundError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def metered(tmp_path):
    server = Server(tmp_path / "data", token=OWNER, metrics=True).start()
    yield server
    server.stop()


def test_the_public_port_answers_metrics_with_not_found_on_every_hostname(metered):
    for headers in ({}, {"Host": f"default.registry.localhost:{metered.port}"}, {"Authorization": f"Bearer {OWNER}"}):
        r = requests.get(f"{metered.url}/metrics", headers=headers, timeout=10)
        assert r.status_code == 404, r.text
        assert r.json()["errors"][0]["code"] == "NOT_FOUND"
        assert "berth_" not in r.text


@pytest.mark.parametrize("workers", [1, 2])
def test_the_metrics_listener_counts_every_request_made_on_the_public_port(tmp_path, workers):
    server = Server(tmp_path / "data", token=OWNER, metrics=True, env={"BERTH_WORKERS": str(workers)}).start()
    try:
        for _ in range(20):  # a new connection each time: the kernel hands them to either worker
            r = requests.get(f"{server.url}/v2/", headers={"Connection": "close"}, timeout=10)
            assert r.status_code == 401
        for _ in range(8):  # any worker may answer a scrape, and each must tell the whole count
            r = requests.get(server.metrics_url, headers={"Connection": "close"}, timeout=10)
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
            assert scraped_count(r.text, route="oci.base", method="GET", status="401") == 20
            assert 'berth_storage_bytes{registry="default"}' in r.text
        assert listening_ports(server.process.pid) == {server.port, server.metrics_port}
    finally:
        server.stop()


def test_the_metrics_listener_serves_nothing_but_metrics(metered):
    owner = {"Authorization": f"Bearer {OWNER}"}
    base = metered.metrics_url.removesuffix("/metrics")
    for path in (
        "/v2/",
        "/v2/default/app/tags/list",
        "/api/v1/orgs",
        "/api/v1/openapi.json",
        "/auth/token",
        "/auth/jwks.json",
        "/healthz",
        "/metrics/",
    ):
        r = requests.get(base + path, headers=owner, timeout=10)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["Content-Type"] in ("application/json", "application/problem+json")
        assert r.json().get("code", r.json().get("errors", [{}])[0].get("code")) == "NOT_FOUND"
    assert requests.post(metered.metrics_url, timeout=10).status_code == 404
    assert requests.get(f"{metered.url}/v2/", headers=owner, timeout=10).status_code == 200  # the public port does


def test_without_a_metrics_address_nothing_listens_for_metrics(tmp_path):
    server = Server(tmp_path / "data", token=OWNER).start()
    try:
        assert listening_ports(server.process.pid) == {server.port}
        with pytest.raises(requests.ConnectionError):
            requests.get(server.metrics_url, timeout=10)
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404
    finally:
        server.stop()


def test_the_probes_name_no_tenant_even_when_failing(metered):
    api = {"Authorization": f"Bearer {OWNER}"}
    r = requests.post(f"{metered.url}/api/v1/orgs/default/registries", json={"name": TENANT}, headers=api, timeout=10)
    assert r.status_code == 202, r.text
    hostnames = ({}, {"Host": f"{TENANT}.registry.localhost:{metered.port}"})

    def bodies() -> list[tuple[int, str]]:
        return [
            (r.status_code, r.text)
            for h in hostnames
            for path in ("/healthz", "/readyz")
            for r in [requests.get(f"{metered.url}{path}", headers=h, timeout=10)]
        ]

    assert TENANT in requests.get(metered.metrics_url, timeout=10).text  # a tenant the server knows
    healthy = bodies()
    assert [status for status, _ in healthy] == [200, 200, 200, 200]
    blobs = metered.data_dir / "storage" / "blobs"
    shutil.move(blobs, metered.data_dir / "storage" / "moved")  # not ready: the blob store is gone
    try:
        failing = bodies()
    finally:
        shutil.move(metered.data_dir / "storage" / "moved", blobs)
    assert [status for status, _ in failing] == [200, 503, 200, 503]
    for _, text in healthy + failing:
        assert TENANT not in text and "default" not in text, text


def test_the_metrics_address_flag_is_refused_when_unparsable_or_on_the_public_port(tmp_path):
    port = free_port()
    for value, message in (("nonsense", "use host:port"), (f"127.0.0.1:{port}", "off the public port")):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
                "--metrics-addr",
                value,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0 and message in done.stderr, done.stderr
