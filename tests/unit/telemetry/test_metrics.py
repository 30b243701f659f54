"""Metrics as a scrape reads them (prometheus_client's own text format): requests by route,
method and status, made-up methods folded into OTHER, bytes and pulls counted only for what
succeeded, and stored-state gauges read from a real SQLite database."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.db.models import Blob, Manifest, Organization, Registry, Repository, Tag, Upload
from app.telemetry.metrics import Metrics, StoredState


def _samples(registry: CollectorRegistry) -> dict:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_by_route_method_and_status_and_made_up_methods_fold():
    m = Metrics()
    m.observe("oci.manifest", "GET", 200, 0.01, "r", 0, 500)
    m.observe("oci.manifest", "GET", 200, 0.01, "r", 0, 500)
    m.observe("oci.manifest", "BREW", 405, 0.01, "r", 0, 0)
    s = _samples(m.registry)
    assert s[("berth_http_requests_total", (("method", "GET"), ("route", "oci.manifest"), ("status", "200")))] == 2
    assert s[("berth_http_requests_total", (("method", "OTHER"), ("route", "oci.manifest"), ("status", "405")))] == 1
    assert not any(dict(labels).get("method") == "BREW" for _, labels in s)
    assert s[("berth_pulls_total", (("registry", "r"),))] == 2


def test_bytes_pushes_and_pulls_count_only_successes_of_their_routes():
    m = Metrics()
    m.observe("oci.uploads", "POST", 201, 0.1, "r", 1000, 0)
    m.observe("oci.upload", "PUT", 416, 0.1, "r", 50, 0)  # refused: nothing kept
    m.observe("oci.blob", "GET", 200, 0.1, "r", 0, 300)
    m.observe("oci.blob", "HEAD", 200, 0.1, "r", 0, 300)
    m.observe("oci.manifest", "PUT", 201, 0.1, "r", 10, 0)
    m.observe("api.registries", "GET", 200, 0.1, None, 0, 10)
    s = _samples(m.registry)
    assert s[("berth_bytes_pushed_total", (("registry", "r"),))] == 1000
    assert s[("berth_bytes_pulled_total", (("registry", "r"),))] == 300
    assert s[("berth_pushes_total", (("registry", "r"),))] == 1
    assert ("berth_pulls_total", (("registry", "r"),)) not in s


def test_a_fallback_is_counted_per_dependency():
    m = Metrics()
    count = m.dependency_fallback("redis")
    count()
    count()
    assert _samples(m.registry)[("berth_dependency_fallback_total", (("dependency", "redis"),))] == 2


def test_stored_state_is_read_from_the_database_at_scrape_time(database):
    org = Organization.create(name="o")
    r, empty = Registry.create(org=org, name="r"), Registry.create(org=org, name="empty")
    repo = Repository.create(registry=r, name="app")
    for n, size in ((1, 100), (2, 23)):
        Blob.create(registry=r, digest=f"sha256:{n:064d}", size=size)
    m = Manifest.create(repository=repo, digest="sha256:" + "f" * 64, media_type="x", size=1, content=b"{}")
    Tag.create(repository=repo, name="a", manifest=m)
    Upload.create(id="00000000-0000-0000-0000-000000000001", repository=repo, registry_id=repo.registry_id)
    registry = CollectorRegistry()
    registry.register(StoredState())
    s = _samples(registry)
    assert s[("berth_storage_bytes", (("registry", "r"),))] == 123
    assert s[("berth_storage_bytes", (("registry", "empty"),))] == 0
    assert s[("berth_blobs", (("registry", "r"),))] == 2 and s[("berth_tags", (("registry", "r"),))] == 1
    assert s[("berth_manifests", (("registry", "empty"),))] == 0 and s[("berth_upload_sessions", ())] == 1
    assert s[("berth_lifecycle_operations", (("kind", "create"), ("state", "failed")))] == 0
    Blob.create(registry=empty, digest="sha256:" + "e" * 64, size=5)
    assert _samples(registry)[("berth_storage_bytes", (("registry", "empty"),))] == 5
