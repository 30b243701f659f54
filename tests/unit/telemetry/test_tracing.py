"""Tracing through the real OpenTelemetry SDK, exported to its in-memory exporter: a request
joins the caller's trace and hands it on, a 5xx marks its span an error, SQL statements and
storage calls get child spans, and without an exporter nothing is recorded."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from app.db.models import Organization
from app.telemetry import tracing

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def spans(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    exporter = InMemorySpanExporter()
    tracing.setup(exporter, processor_class=SimpleSpanProcessor)
    yield exporter
    tracing.setup(None)


class Resource:
    def on_get(self, req, resp, code):
        req.context.registry_name = "r"
        if code == "500":
            raise falcon.HTTPInternalServerError()
        resp.media = {"trace": req.context.trace_id}


def _client():
    app = falcon.App(middleware=[tracing.TracingMiddleware()])
    app.add_route("/x/{code}", Resource())
    return falcon.testing.TestClient(app)


def test_a_request_joins_the_caller_s_trace_and_hands_it_on(spans):
    result = _client().simulate_get("/x/200", headers={"traceparent": TRACEPARENT})
    assert result.json["trace"] == CALLER_TRACE
    assert result.headers["traceparent"].split("-")[1] == CALLER_TRACE
    (span,) = spans.get_finished_spans()
    assert span.name == "GET /x/{code}" and span.attributes["http.response.status_code"] == 200
    assert span.attributes["berth.registry"] == "r" and span.status.status_code != StatusCode.ERROR


def test_a_server_error_marks_its_span(spans):
    _client().simulate_get("/x/500")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR


def test_statements_and_storage_calls_get_child_spans_without_parameters(spans, database):
    tracing.trace_database(database)
    tracing.trace_database(database)  # once only
    Organization.create(name="secret-name")

    class Store:
        def blob_size(self, key):
            return 3

    assert tracing.TracedStore(Store()).blob_size("k") == 3
    names = [s.name for s in spans.get_finished_spans()]
    assert names.count("storage.blob_size") == 1
    queries = [s for s in spans.get_finished_spans() if s.name == "db.query"]
    assert any("INSERT" in s.attributes["db.statement"] for s in queries)
    assert all("secret-name" not in s.attributes["db.statement"] for s in queries)
    assert len([s for s in queries if "INSERT" in s.attributes["db.statement"]]) == 1


def test_without_an_exporter_tracing_is_off(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert tracing.setup(None) is None and not tracing.enabled()
    result = _client().simulate_get("/x/200", headers={"traceparent": TRACEPARENT})
    assert result.json["trace"] == CALLER_TRACE  # log lines still join the caller's trace
    assert "traceparent" not in result.headers


def test_server_side_prepared_statements_on_postgres_get_child_spans_too(spans):
    """On PostgreSQL compiled statements run through `execute_prepared`, not `execute_sql`: they
    are traced all the same, by their text."""
    from app.db.setup import open_database
    from app.services.repositories import find
    from tests.support import postgres

    database = open_database(postgres.create_database())
    try:
        tracing.trace_database(database)
        org = Organization.create(name="o")
        from app.db.models import Registry

        registry = Registry.create(org=org, name="r")
        spans.clear()
        assert find(registry, "nothing") is None  # a compiled query (app/services/repositories.py)
        statements = [s.attributes["db.statement"] for s in spans.get_finished_spans() if s.name == "db.query"]
        assert any('FROM "repository"' in s and "$1" in s for s in statements), statements
    finally:
        database.close()
