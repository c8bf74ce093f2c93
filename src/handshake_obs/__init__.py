"""handshake-obs: observability for Temporal's asynchronous activity completion.

The public names below are imported on first use, so that ``import handshake_obs`` (and the
``handshake-obs`` command, whose ``--help`` needs none of them) stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._errors import (
        ActivityAlreadyClosedError,
        CompletionError,
        CompletionRejectedError,
        ConfigurationError,
        DeadlineInPastError,
        DeadlinePastTemporalTimeoutError,
        HandoffAlreadyFinishedError,
        HandshakeError,
        InvalidTaskTokenError,
        LedgerError,
        MissingExtraError,
        NotInActivityError,
        TemporalConnectionError,
        TemporalUnavailableError,
        UnknownHandoffError,
    )
    from ._handshake import Handshake
    from ._interceptor import HandshakeInterceptor
    from ._plugin import HandshakePlugin
    from ._records import HandoffRecord
    from ._tokens import token_fingerprint
    from ._vocabulary import (
        DEADLINE_EXCEEDED_TYPE,
        OPERATOR_FAILURE_TYPE,
        ErrorType,
        Operation,
        Outcome,
        ReapStatus,
        State,
    )
    from .completion._completer import Completer
    from .completion._path import CallResult
    from .completion._reaper import Reaper, ReapResult
    from .config import HandshakeConfig, RetryPolicy, TargetPolicy
    from .ledger import HeartbeatResult
    from .telemetry._logging import configure_logging, flush_logs
    from .telemetry._otlp import TracingConfig, configure_tracing, shutdown_tracing
    from .worker._handoff import Handoff, handoff

try:
    __version__ = version("handshake-obs")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, uninstalled
    __version__ = "0+unknown"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "DEADLINE_EXCEEDED_TYPE": "._vocabulary",
    "OPERATOR_FAILURE_TYPE": "._vocabulary",
    "ActivityAlreadyClosedError": "._errors",
    "CallResult": ".completion._path",
    "Completer": ".completion._completer",
    "CompletionError": "._errors",
    "CompletionRejectedError": "._errors",
    "ConfigurationError": "._errors",
    "DeadlineInPastError": "._errors",
    "ErrorType": "._vocabulary",
    "Handoff": ".worker._handoff",
    "DeadlinePastTemporalTimeoutError": "._errors",
    "HandoffAlreadyFinishedError": "._errors",
    "HandoffRecord": "._records",
    "Handshake": "._handshake",
    "HandshakeConfig": ".config",
    "HandshakeError": "._errors",
    "HandshakeInterceptor": "._interceptor",
    "HandshakePlugin": "._plugin",
    "HeartbeatResult": ".ledger",
    "InvalidTaskTokenError": "._errors",
    "LedgerError": "._errors",
    "MissingExtraError": "._errors",
    "NotInActivityError": "._errors",
    "Operation": "._vocabulary",
    "Outcome": "._vocabulary",
    "ReapResult": ".completion._reaper",
    "ReapStatus": "._vocabulary",
    "Reaper": ".completion._reaper",
    "RetryPolicy": ".config",
    "State": "._vocabulary",
    "TargetPolicy": ".config",
    "TemporalConnectionError": "._errors",
    "TemporalUnavailableError": "._errors",
    "TracingConfig": ".telemetry._otlp",
    "UnknownHandoffError": "._errors",
    "configure_logging": ".telemetry._logging",
    "configure_tracing": ".telemetry._otlp",
    "flush_logs": ".telemetry._logging",
    "handoff": ".worker._handoff",
    "shutdown_tracing": ".telemetry._otlp",
    "token_fingerprint": "._tokens",
}

__all__ = [
    "DEADLINE_EXCEEDED_TYPE",
    "OPERATOR_FAILURE_TYPE",
    "ActivityAlreadyClosedError",
    "CallResult",
    "Completer",
    "CompletionError",
    "CompletionRejectedError",
    "ConfigurationError",
    "DeadlineInPastError",
    "DeadlinePastTemporalTimeoutError",
    "ErrorType",
    "Handoff",
    "HandoffAlreadyFinishedError",
    "HandoffRecord",
    "Handshake",
    "HandshakeConfig",
    "HandshakeError",
    "HandshakeInterceptor",
    "HandshakePlugin",
    "HeartbeatResult",
    "InvalidTaskTokenError",
    "LedgerError",
    "MissingExtraError",
    "NotInActivityError",
    "Operation",
    "Outcome",
    "ReapResult",
    "ReapStatus",
    "Reaper",
    "RetryPolicy",
    "State",
    "TargetPolicy",
    "TemporalConnectionError",
    "TemporalUnavailableError",
    "TracingConfig",
    "UnknownHandoffError",
    "__version__",
    "configure_logging",
    "configure_tracing",
    "flush_logs",
    "handoff",
    "shutdown_tracing",
    "token_fingerprint",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return __all__
