"""Configuration: the library's :class:`HandshakeConfig`, the processes' settings, and the
Temporal connection every process dials with (:class:`TemporalConnection`,
:func:`connect_temporal`).

The configuration classes read nothing; :func:`read_settings` reads the environment and the
config file, in one module, and builds them. It (and what else reads) is imported on first
use, so that importing a configuration class does not import pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._handshake_config import (
    DEFAULT_PENDING_AGE_BOUNDS,
    HandshakeConfig,
    RetryPolicy,
    TargetPolicy,
)
from ._log_levels import DEFAULT_LOG_LEVEL, LOG_LEVELS
from ._proxy_settings import AsyncActivity, ProxySettings
from ._sidecar_endpoint import SidecarEndpoint
from ._sidecar_settings import SidecarSettings
from ._temporal_connect import connect_temporal, connection_error
from ._temporal_connection import TemporalConnection, TemporalTLS
from ._tracing_config import TracingConfig

if TYPE_CHECKING:
    from ._environment import (
        CONFIG_FILE_VARIABLE,
        Settings,
        load_settings,
        read_settings,
        setting_names,
        variable_name,
    )

#: Names defined by the module that reads the environment, imported on first use.
_READING_NAMES = frozenset(
    {
        "CONFIG_FILE_VARIABLE",
        "Settings",
        "load_settings",
        "read_settings",
        "setting_names",
        "variable_name",
    }
)

__all__ = [
    "CONFIG_FILE_VARIABLE",
    "DEFAULT_LOG_LEVEL",
    "DEFAULT_PENDING_AGE_BOUNDS",
    "LOG_LEVELS",
    "AsyncActivity",
    "HandshakeConfig",
    "ProxySettings",
    "RetryPolicy",
    "Settings",
    "SidecarEndpoint",
    "SidecarSettings",
    "TargetPolicy",
    "TemporalConnection",
    "TemporalTLS",
    "TracingConfig",
    "connect_temporal",
    "connection_error",
    "load_settings",
    "read_settings",
    "setting_names",
    "variable_name",
]


def __getattr__(name: str) -> Any:
    if name not in _READING_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("._environment", __name__), name)
    globals()[name] = value  # looked up once
    return value
