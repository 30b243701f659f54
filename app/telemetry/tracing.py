"""OpenTelemetry tracing: a server span per request (W3C `traceparent` in and out), child
spans around storage and database work. Spans are exported over OTLP when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, and nowhere otherwise."""

from __future__ import annotations

import functools
import os

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()
_tracer: trace.Tracer = trace.NoOpTracer()


def setup(exporter: SpanExporter | None = None, processor_class=BatchSpanProcessor) -> TracerProvider | None:
    """Build the tracer provider; returns None (tracing off) without an exporter or endpoint."""
    global _tracer
    if exporter is None and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is None:
        _tracer = trace.NoOpTracer()
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "berth")}))
    provider.add_span_processor(processor_class(exporter))
    _tracer = provider.get_tracer("berth")
    return provider


def tracer() -> trace.Tracer:
    return _tracer


def enabled() -> bool:
    """Whether `setup` found somewhere to send spans."""
    return not isinstance(_tracer, trace.NoOpTracer)


def traced(name: str):
    """Decorator: run the function in a child span named `name`."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with _tracer.start_as_current_span(name):
                return fn(*args, **kwargs)

        return inner

    return wrap


class TracingMiddleware:
    def process_request(self, req, resp) -> None:
        traceparent = req.get_header("traceparent")
        if traceparent is None and isinstance(_tracer, trace.NoOpTracer):
            return  # nothing to record and no caller's trace to join: no span (a few % of a request)
        carrier = {"traceparent": traceparent or "", "tracestate": req.get_header("tracestate") or ""}
        parent = PROPAGATOR.extract({k: v for k, v in carrier.items() if v})
        span = _tracer.start_span(
            f"{req.method} {req.path[:80]}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": req.method, "url.path": req.path[:512]},
        )
        req.context.span = span
        req.context.otel_token = otel_context.attach(trace.set_span_in_context(span))
        span_context = span.get_span_context()
        if span_context.is_valid:
            # Logged even when tracing is off, so log lines join the caller's trace.
            req.context.trace_id = format(span_context.trace_id, "032x")
        if span.is_recording():
            headers: dict[str, str] = {}
            PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
            for name, value in headers.items():
                resp.set_header(name, value)

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        span = getattr(req.context, "span", None)
        if span is None:
            return
        status = int(str(resp.status).split(" ", 1)[0])
        span.update_name(f"{req.method} {getattr(req.context, 'route', None) or req.uri_template or 'unmatched'}")
        span.set_attribute("http.response.status_code", status)
        for attribute, field in (("berth.registry", "registry_name"), ("berth.repository", "repository")):
            value = getattr(req.context, field, None)
            if value:
                span.set_attribute(attribute, value)
        if status >= 500:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end()
        otel_context.detach(req.context.otel_token)


def trace_database(db) -> None:
    """Child spans around every SQL statement (the text only: parameters may hold secrets' hashes)."""
    if getattr(db, "_berth_traced", False):
        return
    original = db.execute_sql

    def execute_sql(sql, params=None, *args, **kwargs):
        with _tracer.start_as_current_span("db.query", attributes={"db.statement": str(sql)[:300]}):
            return original(sql, params, *args, **kwargs)

    db.execute_sql = execute_sql
    prepared = getattr(db, "execute_prepared", None)  # PostgreSQL's server-side prepared statements
    if prepared is not None:

        def execute_prepared(name, sql, params):
            with _tracer.start_as_current_span("db.query", attributes={"db.statement": str(sql)[:300]}):
                return prepared(name, sql, params)

        db.execute_prepared = execute_prepared
    db._berth_traced = True


class TracedStore:
    """A BlobStore whose every call runs in a `storage.<method>` span."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if callable(attr) and not name.startswith("_"):
            return traced(f"storage.{name}")(attr)
        return attr
