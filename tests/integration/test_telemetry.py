"""Observability against the real server: JSON request logs, OpenTelemetry spans (in memory,
and exported over OTLP/HTTP to a real listener), Prometheus metrics, health probes."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.support.registry_client import RegistryClient
from tests.support.server import Server

OWNER = "berth_telemetry_owner_0123456789"


def test_one_json_line_per_request(server):
    client = RegistryClient(server.url, server.session())
    client.push_image("default/logged/app", "v1", layers=[b"x" * 1000])
    rid = "telemetry-test-1"
    client.request("GET", "/v2/default/logged/app/manifests/v1", headers={"X-Request-ID": rid})
    records = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    mine = [r for r in records if r.get("request_id") == rid]
    assert len(mine) == 1
    line = mine[0]
    assert {k: line[k] for k in ("method", "route", "registry", "repository", "status", "subject", "client_ip")} == {
        "method": "GET",
        "route": "oci.manifest",
        "registry": "default",
        "repository": "logged/app",
        "status": 200,
        "subject": "token:1",
        "client_ip": "127.0.0.1",
    }
    assert line["bytes_out"] > 0 and line["duration_ms"] >= 0 and "trace_id" in line
    assert line["user_agent"].startswith("python-requests/")
    pushes = [r for r in records if r.get("route") == "oci.uploads" and r.get("repository") == "logged/app"]
    assert any(r["bytes_in"] == 1000 for r in pushes)


def test_the_request_log_names_the_client_and_cuts_a_long_user_agent(server):
    """Operators tell a node's containerd from a CI's docker by it; no caller makes lines unbounded."""
    for rid, agent in (("ua-short", "containerd/1.6.20~ds1"), ("ua-long", "x" * 5000)):
        requests.get(f"{server.url}/v2/", headers={"X-Request-ID": rid, "User-Agent": agent}, timeout=30)
    records = {
        r.get("request_id"): r
        for r in map(json.loads, filter(lambda line: line.startswith("{"), server.logs().splitlines()))
    }
    assert records["ua-short"]["user_agent"] == "containerd/1.6.20~ds1"
    assert records["ua-long"]["user_agent"] == "x" * 256


class Collector:
    """A real OTLP/HTTP endpoint on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                collector.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def spans(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    yield from scope_spans.spans


def test_spans_are_exported_over_otlp_with_w3c_propagation(tmp_path):
    collector = Collector()
    server = Server(
        tmp_path / "data",
        token=OWNER,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"},
    ).start()
    try:
        client = RegistryClient(server.url, server.session())
        client.push_image("default/traced", "v1")
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent = "00f067aa0ba902b7"
        r = client.request(
            "GET", "/v2/default/traced/manifests/v1", headers={"traceparent": f"00-{trace_id}-{parent}-01"}
        )
        assert r.status_code == 200
        version, out_trace, out_span, flags = r.headers["traceparent"].split("-")
        assert out_trace == trace_id and out_span != parent  # our span, in the caller's trace
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            spans = list(collector.spans())
            ours = [s for s in spans if s.trace_id.hex() == trace_id]
            if any(s.name == "GET oci.manifest" for s in ours) and any(s.name == "db.query" for s in ours):
                break
            time.sleep(0.1)
        server_span = next(s for s in ours if s.name == "GET oci.manifest")
        assert server_span.parent_span_id.hex() == parent
        assert server_span.span_id.hex() == out_span
        children = [s for s in ours if s.parent_span_id == server_span.span_id]
        assert {"db.query"} <= {s.name for s in children}
        # Storage work gets spans too (the blob upload of the push).
        assert any(s.name.startswith("storage.") for s in spans)
        attributes = {a.key: a.value for a in server_span.attributes}
        assert attributes["http.response.status_code"].int_value == 200
        assert attributes["berth.registry"].string_value == "default"
    finally:
        server.stop()
        collector.httpd.shutdown()


def test_no_tracing_without_an_endpoint(server):
    r = requests.get(
        f"{server.url}/v2/",
        auth=("a", server.token),
        timeout=10,
        headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    assert r.status_code == 200 and "traceparent" not in r.headers
    line = next(json.loads(x) for x in server.logs().splitlines()[::-1] if '"route": "oci.base"' in x)
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"  # logs still join the caller's trace


def _metric(text: str, name: str, **labels) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_prometheus_metrics(tmp_path):
    server = Server(tmp_path / "data", token=OWNER, metrics=True).start()
    try:
        client = RegistryClient(server.url, server.session())
        client.push_image("default/metered", "v1", layers=[b"m" * 5000])
        client.request("GET", "/v2/default/metered/manifests/v1")
        layer = client.request("GET", "/v2/default/metered/manifests/v1").json()["layers"][0]["digest"]
        client.request("GET", f"/v2/default/metered/blobs/{layer}")
        client.request("POST", "/v2/default/metered/blobs/uploads/")  # left open
        for i in range(3):  # made-up methods: one OTHER series, not one per name
            requests.request(f"BREW{i}", f"{server.url}/v2/", timeout=10)
        r = requests.get(server.metrics_url, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        text = r.text
        assert _metric(text, "berth_http_requests_total", route="oci.manifest", method="GET", status="200") == 2
        assert _metric(text, "berth_http_request_duration_seconds_count", route="oci.manifest", method="GET") == 2
        assert "BREW" not in text
        assert (
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("berth_http_requests_total{") and 'method="OTHER"' in line
            )
            == 3
        )
        assert _metric(text, "berth_bytes_pushed_total", registry="default") >= 5000
        assert _metric(text, "berth_bytes_pulled_total", registry="default") == 5000
        assert _metric(text, "berth_upload_sessions") == 1
        manifest = client.request("GET", "/v2/default/metered/manifests/v1").json()
        stored = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
        assert _metric(text, "berth_storage_bytes", registry="default") == stored

        # Lifecycle operations by state, and one JSON log line per lifecycle step.
        api = {"Authorization": f"Bearer {OWNER}"}
        op = requests.post(
            f"{server.url}/api/v1/orgs/default/registries", json={"name": "metered"}, headers=api, timeout=10
        ).json()["operation"]
        for _ in range(200):
            if (
                requests.get(f"{server.url}{op['links']['self']}", headers=api, timeout=10).json()["state"]
                == "succeeded"
            ):
                break
            time.sleep(0.05)
        text = requests.get(server.metrics_url, timeout=10).text
        assert _metric(text, "berth_lifecycle_operations", kind="create", state="succeeded") == 1
        assert _metric(text, "berth_lifecycle_operations", kind="delete", state="pending") == 0
        steps = [
            json.loads(line)
            for line in server.log_path.read_text().splitlines()
            if line.startswith("{") and '"operation"' in line and '"step"' in line
        ]
        assert {(s["step"], s["state"]) for s in steps if s["operation"] == op["id"]} >= {
            ("provision", "running"),
            ("provision", "succeeded"),
            ("activate", "succeeded"),
        }
    finally:
        server.stop()


def test_health_and_readiness(tmp_path):
    server = Server(tmp_path / "data", token=OWNER).start()
    try:
        assert requests.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}
        r = requests.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "storage": "ok", "disk": "ok"}
        blobs = server.data_dir / "storage" / "blobs"
        shutil.move(blobs, server.data_dir / "storage" / "moved")
        r = requests.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 503 and "storage" in r.json()["errors"][0]["message"]
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200  # alive, not ready
        shutil.move(server.data_dir / "storage" / "moved", blobs)
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    finally:
        server.stop()
