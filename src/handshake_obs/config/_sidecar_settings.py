"""Settings of the sidecar process: its API, its worker, and the targets it hands off to.

It reads nothing itself: :func:`handshake_obs.config.load_settings` fills it from the
``HANDSHAKE_*`` variables and the config file, whose ``[[targets]]`` tables give the target
URLs. "Setting ``name``" below is the variable ``HANDSHAKE_NAME`` and the file key ``name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from .._vocabulary import PUBLISHED_RUNBOOK_URL
from ._handshake_config import HandshakeConfig

#: Largest request body the API reads (a result or an error with details).
DEFAULT_MAX_BODY_BYTES = 256 * 1024
#: Longest a request body may take to arrive.
DEFAULT_BODY_TIMEOUT = timedelta(seconds=10)
#: Connections served at once.
DEFAULT_MAX_CONNECTIONS = 1000


@dataclass(frozen=True, slots=True)
class SidecarSettings:
    """Everything ``handshake-obs serve`` needs beyond :class:`HandshakeConfig`."""

    #: Bearer token of the completion endpoints (external systems). None: they refuse all.
    #: Setting ``completion_token``.
    completion_token: str | None = field(default=None, repr=False)
    #: Bearer token of the operator endpoints. None: they refuse all.
    #: Setting ``operator_token``.
    operator_token: str | None = field(default=None, repr=False)
    #: Bearer token of the inventory and the status page. None: open.
    #: Setting ``inventory_token``.
    inventory_token: str | None = field(default=None, repr=False)
    #: Task queue of the sidecar's worker. Setting ``task_queue``.
    task_queue: str = "handshake-obs"
    #: Base URL external systems reach this sidecar at (callback URLs are built from it).
    #: Setting ``public_url``; default: ``http://`` + listen address.
    public_url: str | None = None
    #: Largest request body accepted. Setting ``max_body_bytes``.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Longest a client may take to send a request body; a stalled or slow upload is
    #: answered 408 and its connection closed. Setting ``body_timeout_seconds``.
    body_timeout: timedelta = DEFAULT_BODY_TIMEOUT
    #: Most connections (and requests) served at once; past it a request gets 503.
    #: Setting ``max_connections``.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Serve on an address other than loopback with an endpoint group that has no token.
    #: Off: ``serve`` refuses to start so. Setting ``allow_unauthenticated``.
    allow_unauthenticated: bool = False
    #: Temporal UI base URL for links. Setting ``temporal_ui_url``.
    temporal_ui_url: str = "http://localhost:8233"
    #: Trace link with ``{trace_id}``. Setting ``trace_url_template``.
    trace_url_template: str = "http://localhost:16686/trace/{trace_id}"
    #: Where ``docs/runbook.md`` is published; the handoff page links to the section of a
    #: handoff's state there. Setting ``runbook_url``.
    runbook_url: str = PUBLISHED_RUNBOOK_URL
    #: The Grafana dashboard (``dashboards/handshake-obs.json`` as imported); None: no link.
    #: Setting ``dashboard_url``.
    dashboard_url: str | None = None
    #: Prometheus's web UI; None: no link. Setting ``prometheus_url``.
    prometheus_url: str | None = None
    #: Where the HTTP handoff activity POSTs, by target. Setting: the ``url`` of each of the
    #: config file's ``[[targets]]``.
    target_urls: Mapping[str, str] = field(default_factory=dict)
    #: Timeout of one delivery POST to a target.
    delivery_timeout: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        for name, url in self.target_urls.items():
            if urlsplit(url).scheme not in ("http", "https"):
                raise ConfigurationError(f"target {name!r}: url must be http(s), not {url!r}")
        if self.max_body_bytes < 1024:
            raise ConfigurationError("max_body_bytes must be at least 1024")
        if self.body_timeout <= timedelta(0):
            raise ConfigurationError("body_timeout_seconds must be positive")
        if self.max_connections < 8:
            raise ConfigurationError("max_connections must be at least 8")
        for name in ("runbook_url", "dashboard_url", "prometheus_url", "temporal_ui_url"):
            url = getattr(self, name)
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                raise ConfigurationError(f"{name} must be an http(s) URL, not {url!r}")
        if "{trace_id}" not in self.trace_url_template:
            raise ConfigurationError("trace_url_template must contain {trace_id}")

    def callback_base(self, config: HandshakeConfig) -> str:
        """Base URL of this sidecar as external systems see it."""
        return (self.public_url or f"http://{config.listen_address}").rstrip("/")
