"""Metrics, pending gauges, spans, OTLP export and structured logs."""
