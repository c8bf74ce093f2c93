"""Trace export: an OTLP ``TracerProvider`` built from a :class:`TracingConfig`.

The configuration comes from the standard ``OTEL_*`` variables, read where every setting is
read (:func:`handshake_obs.config.read_settings`).

No endpoint configured means no provider and no exporter: nothing is installed and nothing
is logged. With one, spans leave through a ``BatchSpanProcessor``: ending a span only
appends it to a bounded in-memory queue; a background thread exports, with the exporter's
own timeout, and drops spans (and logs) when the collector cannot keep up or is down. A
handoff never waits for the collector. At exit, :func:`shutdown_tracing` sends what is still
queued without waiting long for a collector that is down.
"""

from __future__ import annotations

import threading
from typing import Final

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

# TracingConfig is defined with the rest of the configuration; re-exported (mypy's way) so
# that it is still found here.
from ..config import TracingConfig as TracingConfig  # noqa: PLC0414

#: Service name when neither ``OTEL_SERVICE_NAME`` nor ``OTEL_RESOURCE_ATTRIBUTES`` names one.
DEFAULT_SERVICE_NAME: Final = "handshake-obs"


def build_exporter(config: TracingConfig) -> SpanExporter | None:
    """The OTLP span exporter ``config`` asks for (None: no endpoint configured)."""
    endpoint = config.exporter_endpoint
    if endpoint is None:
        return None
    # Imported here: each exporter pulls in its transport (grpc, requests), and a process
    # that does not export should not pay for either (nor install it: the 'otlp' extra).
    from .._extras import require_extra  # noqa: PLC0415

    require_extra("otlp", "OTLP span export (OTEL_EXPORTER_OTLP_ENDPOINT)")
    if config.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter(endpoint=endpoint, timeout=config.export_timeout)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as GrpcExporter,
    )

    return GrpcExporter(endpoint=endpoint, timeout=config.export_timeout)


def configure_tracing(
    config: TracingConfig | None = None, *, set_global: bool = True
) -> TracerProvider | None:
    """Build a ``TracerProvider`` exporting over OTLP, from ``config`` (default: from the
    environment). Returns None, and installs nothing, when no endpoint is configured.

    ``set_global`` installs the provider as OpenTelemetry's global one, which is what
    ``temporalio.contrib.opentelemetry.TracingInterceptor()`` and ``Handshake`` use by
    default. Call :func:`shutdown_tracing` at exit to send what is still queued.
    """
    config = TracingConfig.from_env() if config is None else config
    exporter = build_exporter(config)
    if exporter is None:
        return None
    attributes = {SERVICE_NAME: config.service_name} if config.service_name else {}
    resource = Resource.create(attributes)
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing(provider: TracerProvider, *, timeout: float = 5.0) -> bool:
    """Shut ``provider`` down, waiting at most ``timeout`` seconds: what is queued is sent if
    the collector answers in time, dropped otherwise. Returns whether the shutdown finished.

    ``provider.shutdown()`` alone can wait 30 s for a collector that is down (the batch
    processor's fixed limit on its worker's last exports).
    """
    worker = threading.Thread(
        target=provider.shutdown, name="handshake-tracing-shutdown", daemon=True
    )
    worker.start()
    worker.join(timeout)
    return not worker.is_alive()
