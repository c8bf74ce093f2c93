"""Settings of the sidecar process: its API, its worker, and the targets it hands off to.

Read from ``HANDSHAKE_*`` variables and an optional TOML file (``HANDSHAKE_CONFIG_FILE``)
that lists targets; precedence is argument > environment > file > default.

.. code-block:: toml

    [[targets]]
    name = "billing"
    url = "http://billing.internal:8080/handoffs"
    deadline_seconds = 3600
    retryable = false
    heartbeat_extends_by_seconds = 600
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from ._handshake_config import HandshakeConfig, TargetPolicy

#: Largest request body the API reads (a result or an error with details).
DEFAULT_MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class SidecarSettings:
    """Everything ``handshake-obs serve`` needs beyond :class:`HandshakeConfig`."""

    #: Bearer token of the completion endpoints (external systems). None: they refuse all.
    #: Environment: ``HANDSHAKE_COMPLETION_TOKEN``.
    completion_token: str | None = field(default=None, repr=False)
    #: Bearer token of the operator endpoints. None: they refuse all.
    #: Environment: ``HANDSHAKE_OPERATOR_TOKEN``.
    operator_token: str | None = field(default=None, repr=False)
    #: Bearer token of the inventory and the status page. None: open.
    #: Environment: ``HANDSHAKE_INVENTORY_TOKEN``.
    inventory_token: str | None = field(default=None, repr=False)
    #: Task queue of the sidecar's worker. Environment: ``HANDSHAKE_TASK_QUEUE``.
    task_queue: str = "handshake-obs"
    #: Base URL external systems reach this sidecar at (callback URLs are built from it).
    #: Environment: ``HANDSHAKE_PUBLIC_URL``; default: ``http://`` + listen address.
    public_url: str | None = None
    #: Largest request body accepted. Environment: ``HANDSHAKE_MAX_BODY_BYTES``.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Temporal UI base URL for links. Environment: ``HANDSHAKE_TEMPORAL_UI_URL``.
    temporal_ui_url: str = "http://localhost:8233"
    #: Trace link with ``{trace_id}``. Environment: ``HANDSHAKE_TRACE_URL_TEMPLATE``.
    trace_url_template: str = "http://localhost:16686/trace/{trace_id}"
    #: Where the HTTP handoff activity POSTs, by target.
    target_urls: Mapping[str, str] = field(default_factory=dict)
    #: Timeout of one delivery POST to a target.
    delivery_timeout: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        for name, url in self.target_urls.items():
            if urlsplit(url).scheme not in ("http", "https"):
                raise ConfigurationError(f"target {name!r}: url must be http(s), not {url!r}")
        if self.max_body_bytes < 1024:
            raise ConfigurationError("max_body_bytes must be at least 1024")
        if "{trace_id}" not in self.trace_url_template:
            raise ConfigurationError("trace_url_template must contain {trace_id}")

    def callback_base(self, config: HandshakeConfig) -> str:
        """Base URL of this sidecar as external systems see it."""
        return (self.public_url or f"http://{config.listen_address}").rstrip("/")


def load_settings(
    environ: Mapping[str, str] | None = None, **config_overrides: Any
) -> tuple[HandshakeConfig, SidecarSettings]:
    """Both configurations, from the environment and the optional config file."""
    env = os.environ if environ is None else environ
    policies: dict[str, TargetPolicy] = {}
    urls: dict[str, str] = {}
    if path := env.get("HANDSHAKE_CONFIG_FILE"):
        policies, urls = _read_targets(Path(path))
    config = HandshakeConfig.from_env(
        env,
        **{"target_policies": policies, **config_overrides},
    )
    values: dict[str, Any] = {"target_urls": urls}
    for variable, name in (
        ("HANDSHAKE_COMPLETION_TOKEN", "completion_token"),
        ("HANDSHAKE_OPERATOR_TOKEN", "operator_token"),
        ("HANDSHAKE_INVENTORY_TOKEN", "inventory_token"),
        ("HANDSHAKE_TASK_QUEUE", "task_queue"),
        ("HANDSHAKE_PUBLIC_URL", "public_url"),
        ("HANDSHAKE_TEMPORAL_UI_URL", "temporal_ui_url"),
        ("HANDSHAKE_TRACE_URL_TEMPLATE", "trace_url_template"),
    ):
        if value := env.get(variable):
            values[name] = value
    if size := env.get("HANDSHAKE_MAX_BODY_BYTES"):
        if not size.isdigit():
            raise ConfigurationError(f"HANDSHAKE_MAX_BODY_BYTES: {size!r} is not a byte count")
        values["max_body_bytes"] = int(size)
    return config, SidecarSettings(**values)


def _read_targets(path: Path) -> tuple[dict[str, TargetPolicy], dict[str, str]]:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(f"config file {path}: {err}") from err
    policies: dict[str, TargetPolicy] = {}
    urls: dict[str, str] = {}
    for n, entry in enumerate(document.get("targets", [])):
        where = f"config file {path}, targets[{n}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigurationError(f"{where}: each target needs a name")
        unknown = set(entry) - {
            "name", "url", "deadline_seconds", "retryable", "heartbeat_extends_by_seconds",
        }  # fmt: skip
        if unknown:
            raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
        name = entry["name"]
        policies[name] = TargetPolicy(
            deadline=_seconds(entry.get("deadline_seconds"), where),
            retryable=bool(entry.get("retryable", False)),
            heartbeat_extends_by=_seconds(entry.get("heartbeat_extends_by_seconds"), where),
        )
        if url := entry.get("url"):
            urls[name] = str(url)
    return policies, urls


def _seconds(value: object, where: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{where}: durations are positive numbers of seconds")
    return timedelta(seconds=value)
