"""Configuration: the library's :class:`HandshakeConfig` and the processes' settings."""

from ._handshake_config import (
    DEFAULT_PENDING_AGE_BOUNDS,
    HandshakeConfig,
    RetryPolicy,
    TargetPolicy,
)
from ._sidecar_settings import SidecarSettings, load_settings

__all__ = [
    "DEFAULT_PENDING_AGE_BOUNDS",
    "HandshakeConfig",
    "RetryPolicy",
    "SidecarSettings",
    "TargetPolicy",
    "load_settings",
]
