"""Trace export around a command that makes spans (``serve``, ``reap``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..config import TracingConfig
from ..telemetry._otlp import configure_tracing, shutdown_tracing


@contextmanager
def exporting_spans(config: TracingConfig) -> Iterator[None]:
    """Export spans over OTLP while the block runs, when ``config`` names an endpoint; at
    the end, send what is queued without waiting long for a collector that is down."""
    provider = configure_tracing(config)
    try:
        yield
    finally:
        if provider is not None:
            shutdown_tracing(provider)
