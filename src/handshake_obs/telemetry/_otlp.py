"""Trace export: an OTLP ``TracerProvider`` built from the standard ``OTEL_*`` variables.

No endpoint configured means no provider and no exporter: nothing is installed and nothing
is logged. With one, spans leave through a ``BatchSpanProcessor``: ending a span only
appends it to a bounded in-memory queue; a background thread exports, with the exporter's
own timeout, and drops spans (and logs) when the collector cannot keep up or is down. A
handoff never waits for the collector. At exit, :func:`shutdown_tracing` sends what is still
queued without waiting long for a collector that is down.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from .._errors import ConfigurationError

#: ``OTEL_EXPORTER_OTLP_PROTOCOL`` values understood (the Python SDK's default is grpc).
PROTOCOLS: Final = ("grpc", "http/protobuf")
#: Service name when neither ``OTEL_SERVICE_NAME`` nor ``OTEL_RESOURCE_ATTRIBUTES`` names one.
DEFAULT_SERVICE_NAME: Final = "handshake-obs"
_HTTP_TRACES_PATH = "/v1/traces"


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """Where spans go. Everything else (sampler, batch sizes, headers, TLS, compression,
    resource attributes) is read by the OpenTelemetry SDK from its own ``OTEL_*`` variables.
    """

    #: Base OTLP endpoint: ``http://collector:4317`` (grpc) or ``http://collector:4318``
    #: (http/protobuf; ``/v1/traces`` is appended). Environment: ``OTEL_EXPORTER_OTLP_ENDPOINT``.
    endpoint: str | None = None
    #: Full traces endpoint, used as given; wins over ``endpoint``.
    #: Environment: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``.
    traces_endpoint: str | None = None
    #: ``grpc`` or ``http/protobuf``. Environment: ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``,
    #: then ``OTEL_EXPORTER_OTLP_PROTOCOL``.
    protocol: str = "grpc"
    #: ``service.name`` of the spans (None: ``OTEL_SERVICE_NAME`` /
    #: ``OTEL_RESOURCE_ATTRIBUTES``, else ``handshake-obs``).
    service_name: str | None = None
    #: Seconds one export may take (None: the exporter's ``OTEL_EXPORTER_OTLP_TIMEOUT``,
    #: 10 s by default).
    export_timeout: float | None = None
    #: False when ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``.
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigurationError(
                f"OTLP protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}"
            )
        if self.export_timeout is not None and self.export_timeout <= 0:
            raise ConfigurationError("export_timeout must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> TracingConfig:
        """Arguments first, then the standard ``OTEL_*`` variables, then defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if endpoint := env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            values["endpoint"] = endpoint
        if traces_endpoint := env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
            values["traces_endpoint"] = traces_endpoint
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "").strip()
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
        )
        if protocol:
            values["protocol"] = protocol
        disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        no_exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none"
        if disabled or no_exporter:
            values["enabled"] = False
        values.update(overrides)
        return cls(**values)

    @property
    def exporter_endpoint(self) -> str | None:
        """The endpoint handed to the exporter (None: export is not configured)."""
        if not self.enabled:
            return None
        if self.traces_endpoint:
            return self.traces_endpoint
        if not self.endpoint:
            return None
        if self.protocol == "http/protobuf":
            return self.endpoint.rstrip("/") + _HTTP_TRACES_PATH
        return self.endpoint


def build_exporter(config: TracingConfig) -> SpanExporter | None:
    """The OTLP span exporter ``config`` asks for (None: no endpoint configured)."""
    endpoint = config.exporter_endpoint
    if endpoint is None:
        return None
    # Imported here: each exporter pulls in its transport (grpc, requests), and a process
    # that does not export should not pay for either.
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
