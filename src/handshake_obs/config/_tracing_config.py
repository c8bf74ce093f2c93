"""Where spans go: the part of trace export handshake-obs decides, from ``OTEL_*``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._errors import ConfigurationError

#: ``OTEL_EXPORTER_OTLP_PROTOCOL`` values understood (the Python SDK's default is grpc).
PROTOCOLS: Final = ("grpc", "http/protobuf")
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
        """Arguments first, then the standard ``OTEL_*`` variables, then defaults.

        ``environ`` defaults to the process's environment; the variables are read by
        :func:`handshake_obs.config.read_settings`, like every other setting.
        """
        # pydantic is imported only by a process that reads its settings.
        from ._environment import read_settings  # noqa: PLC0415

        return read_settings(environ).tracing_config(**overrides)

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
