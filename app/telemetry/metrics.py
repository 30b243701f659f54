"""Prometheus metrics (prometheus-client): what is counted, and what a scrape reports.

Counters and histograms are updated per request; gauges that describe stored state (upload
sessions in flight, stored bytes per registry) are read from the database at scrape time, so
every replica reports the same truth. They are served only on the metrics listener
(app/server/metrics_listener.py), never on the public port: the series name every tenant.
"""

from __future__ import annotations

import peewee as pw
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from app.db.models import Blob, Manifest, Operation, Registry, Repository, Tag, Upload

# Routes that move blob bytes, and which way.
PUSH_ROUTES = {"oci.uploads", "oci.upload"}
PULL_ROUTES = {"oci.blob"}
MANIFEST_ROUTE = "oci.manifest"  # a GET is a pull, a PUT a push (as app/services/metering.py counts)


class StoredState:
    """Gauges computed from the database when scraped."""

    def collect(self):
        uploads = GaugeMetricFamily("berth_upload_sessions", "Blob upload sessions in flight")
        stored = GaugeMetricFamily(
            "berth_storage_bytes", "Bytes stored per registry (each blob once)", labels=["registry"]
        )
        lifecycle = GaugeMetricFamily(
            "berth_lifecycle_operations", "Registry lifecycle operations by kind and state", labels=["kind", "state"]
        )
        try:
            uploads.add_metric([], Upload.select().count())
            rows = (
                Registry.select(Registry.name, pw.fn.COALESCE(pw.fn.SUM(Blob.size), 0).alias("bytes"))
                .join(Blob, pw.JOIN.LEFT_OUTER)
                .group_by(Registry.name)
                .tuples()
            )
            for name, total in rows:
                stored.add_metric([name], float(total))
            families = _registry_counts()
            counts = dict(
                ((k, st), n)
                for k, st, n in Operation.select(Operation.kind, Operation.state, pw.fn.COUNT(Operation.id))
                .group_by(Operation.kind, Operation.state)
                .tuples()
            )
            for kind in ("create", "delete"):
                for state in ("pending", "running", "succeeded", "failed"):
                    lifecycle.add_metric([kind, state], counts.get((kind, state), 0))
        except pw.PeeweeException:
            return
        yield uploads
        yield stored
        yield from families
        yield lifecycle


def _registry_counts() -> list[GaugeMetricFamily]:
    """Blobs, tags and manifests per registry (per registry only: a label per repository would
    grow without bound; the management API's /usage has the per-repository numbers)."""
    blobs = GaugeMetricFamily("berth_blobs", "Distinct blobs stored per registry", labels=["registry"])
    tags = GaugeMetricFamily("berth_tags", "Tags per registry", labels=["registry"])
    manifests = GaugeMetricFamily("berth_manifests", "Manifests per registry", labels=["registry"])
    names = dict(Registry.select(Registry.id, Registry.name).tuples())
    counted = [
        (blobs, Blob.select(Blob.registry, pw.fn.COUNT(Blob.id)).group_by(Blob.registry)),
        (tags, Tag.select(Repository.registry, pw.fn.COUNT(Tag.id)).join(Repository).group_by(Repository.registry)),
        (
            manifests,
            Manifest.select(Repository.registry, pw.fn.COUNT(Manifest.id))
            .join(Repository)
            .group_by(Repository.registry),
        ),
    ]
    for family, query in counted:
        counts = dict(query.tuples())
        for registry_id, name in names.items():
            family.add_metric([name], float(counts.get(registry_id, 0)))
    return [family for family, _ in counted]


METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class Metrics:
    """The per-request instruments. Where their values live is prometheus_client's choice, made
    before they are built: in this process's memory, or, when `berth serve` has a metrics
    listener, in this process's files of the counters directory (app/server/metrics_listener.py)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "berth_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "berth_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.pushed = Counter("berth_bytes_pushed", "Blob bytes received", ["registry"], registry=self.registry)
        self.pulled = Counter("berth_bytes_pulled", "Blob bytes served", ["registry"], registry=self.registry)
        self.pulls = Counter("berth_pulls", "Image pulls (manifest GETs) served", ["registry"], registry=self.registry)
        self.pushes = Counter("berth_pushes", "Manifest pushes accepted", ["registry"], registry=self.registry)
        self.fallbacks = Counter(
            "berth_dependency_fallback",
            "Operations done without a dependency that could not be reached (redis: "
            "rate-limit and login-failure counts kept in this machine's memory; counter_table: "
            "in this process's, the shared table being full of live counters)",
            ["dependency"],
            registry=self.registry,
        )
        self.kept_rows_changed = Counter(
            "berth_kept_rows_changed",
            "Data-plane reads run again because a row this process kept (a registry, an access "
            "token: app/db/checked.py) had changed in the database (PostgreSQL only)",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple] = {}  # routes x methods x statuses: bounded

    def dependency_fallback(self, dependency: str):
        """The callable that counts one fallback for `dependency`."""
        return self.fallbacks.labels(dependency).inc

    def observe(
        self, route: str, method: str, status: int, duration: float, registry: str | None, bytes_in: int, bytes_out: int
    ) -> None:
        if method not in METHODS:
            method = "OTHER"  # a client's made-up methods must not grow the series without bound
        children = self._children.get((route, method, status))
        if children is None:  # labels() costs a lock and a tuple per call: look each series up once
            children = self._children[(route, method, status)] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        children[0].inc()
        children[1].observe(duration)
        if registry and status < 400:
            if route in PUSH_ROUTES and bytes_in:
                self.pushed.labels(registry).inc(bytes_in)
            elif route in PULL_ROUTES and bytes_out and method == "GET":
                self.pulled.labels(registry).inc(bytes_out)
            elif route == MANIFEST_ROUTE and method == "GET":
                self.pulls.labels(registry).inc()
            elif route == MANIFEST_ROUTE and method == "PUT":
                self.pushes.labels(registry).inc()


def exposition(counters_dir: str) -> CollectorRegistry:
    """What a scrape reports: the counters of every server process (their files in
    `counters_dir`, summed) and the stored state, read from the database now."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, counters_dir)
    registry.register(StoredState())
    return registry
