"""handshake-obs: observability for Temporal's asynchronous activity completion."""

from ._completer import Completer
from ._completion import CallResult
from ._config import HandshakeConfig, RetryPolicy, TargetPolicy
from ._errors import (
    ActivityAlreadyClosedError,
    CompletionError,
    CompletionRejectedError,
    ConfigurationError,
    HandoffAlreadyFinishedError,
    HandshakeError,
    InvalidTaskTokenError,
    LedgerError,
    NotInActivityError,
    TemporalUnavailableError,
    UnknownHandoffError,
)
from ._handoff import Handoff, handoff
from ._handshake import Handshake
from ._interceptor import HandshakeInterceptor
from ._logging import configure_logging, flush_logs
from ._model import ErrorType, HandoffRecord, Operation, Outcome, State
from ._otlp import TracingConfig, configure_tracing, shutdown_tracing
from ._reaper import DEADLINE_EXCEEDED_TYPE, Reaper, ReapResult
from ._tokens import token_fingerprint

__all__ = [
    "DEADLINE_EXCEEDED_TYPE",
    "ActivityAlreadyClosedError",
    "CallResult",
    "Completer",
    "CompletionError",
    "CompletionRejectedError",
    "ConfigurationError",
    "ErrorType",
    "Handoff",
    "HandoffAlreadyFinishedError",
    "HandoffRecord",
    "Handshake",
    "HandshakeConfig",
    "HandshakeError",
    "HandshakeInterceptor",
    "InvalidTaskTokenError",
    "LedgerError",
    "NotInActivityError",
    "Operation",
    "Outcome",
    "ReapResult",
    "Reaper",
    "RetryPolicy",
    "State",
    "TargetPolicy",
    "TemporalUnavailableError",
    "TracingConfig",
    "UnknownHandoffError",
    "configure_logging",
    "configure_tracing",
    "flush_logs",
    "handoff",
    "shutdown_tracing",
    "token_fingerprint",
]
