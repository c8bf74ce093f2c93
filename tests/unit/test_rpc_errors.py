"""The one place Temporal's RPC failures become handshake-obs errors: each status code maps
to the error (and error type) the callers, the metrics and the HTTP API see."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.service import RPCStatusCode

from handshake_obs import (
    ActivityAlreadyClosedError,
    CompletionError,
    CompletionRejectedError,
    ErrorType,
    InvalidTaskTokenError,
    TemporalUnavailableError,
)
from handshake_obs.completion._rpc_errors import completion_error, is_retryable, no_answer

from .completion_kit import rpc_error


@pytest.mark.parametrize(
    ("status", "message", "error", "error_type", "retryable"),
    [
        (RPCStatusCode.NOT_FOUND, "workflow execution already completed",
         ActivityAlreadyClosedError, ErrorType.ALREADY_CLOSED, False),
        (RPCStatusCode.INVALID_ARGUMENT, "Error deserializing task token.",
         InvalidTaskTokenError, ErrorType.INVALID_TOKEN, False),
        (RPCStatusCode.INVALID_ARGUMENT, "payload too large",
         CompletionRejectedError, ErrorType.REJECTED, False),
        (RPCStatusCode.FAILED_PRECONDITION, "no cancellation was requested",
         CompletionRejectedError, ErrorType.REJECTED, False),
        (RPCStatusCode.UNAVAILABLE, "connection refused",
         TemporalUnavailableError, ErrorType.UNAVAILABLE, True),
        (RPCStatusCode.DEADLINE_EXCEEDED, "context deadline exceeded",
         TemporalUnavailableError, ErrorType.UNAVAILABLE, True),
        (RPCStatusCode.PERMISSION_DENIED, "not allowed",
         CompletionError, ErrorType.OTHER, False),
        (RPCStatusCode.INTERNAL, "boom", CompletionError, ErrorType.OTHER, False),
    ],
)  # fmt: skip
def test_each_status_becomes_its_error_with_temporals_error_as_cause(
    status: RPCStatusCode,
    message: str,
    error: type[CompletionError],
    error_type: ErrorType,
    retryable: bool,
) -> None:
    rpc = rpc_error(status, message)
    mapped = completion_error(rpc)
    assert type(mapped) is error
    assert mapped.error_type is error_type
    assert mapped.__cause__ is rpc
    assert message in str(mapped)
    assert is_retryable(mapped) is retryable


def test_no_answer_before_the_guard_is_unavailable_and_retried() -> None:
    timeout = TimeoutError()
    mapped = no_answer(timedelta(seconds=10), timeout)
    assert mapped.error_type is ErrorType.UNAVAILABLE
    assert mapped.__cause__ is timeout
    assert "0:00:10" in str(mapped)
    assert is_retryable(mapped)
