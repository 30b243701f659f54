"""Observability: JSON logs, OpenTelemetry traces, Prometheus metrics."""
