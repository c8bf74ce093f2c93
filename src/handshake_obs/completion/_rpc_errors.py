"""What Temporal's answers mean: the one place an RPC failure becomes a handshake-obs error.

=======================================  =========================================
Temporal's answer                        raised as
=======================================  =========================================
NOT_FOUND                                :class:`ActivityAlreadyClosedError`
INVALID_ARGUMENT about the task token    :class:`InvalidTaskTokenError`
INVALID_ARGUMENT, FAILED_PRECONDITION    :class:`CompletionRejectedError`
UNAVAILABLE, DEADLINE_EXCEEDED           :class:`TemporalUnavailableError` (retried)
no answer before the client-side guard   :class:`TemporalUnavailableError` (retried)
anything else                            :class:`CompletionError`
another temporalio error                 :class:`CompletionError`
=======================================  =========================================

A heartbeat that Temporal answered with "cancellation requested" is not an error here: the
SDK's ``AsyncActivityCancelledError`` reaches the completion path, which tells its caller.

Each error keeps Temporal's own as its ``__cause__``: a plain handle's caller gets that one
back, as without handshake-obs.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import TemporalError
from temporalio.service import RPCError, RPCStatusCode

from .._errors import (
    ActivityAlreadyClosedError,
    CompletionError,
    CompletionRejectedError,
    InvalidTaskTokenError,
    TemporalUnavailableError,
)

#: Codes worth another try: Temporal (or the network to it) did not answer in time.
_RETRYABLE = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
#: Codes of a call Temporal understood and refused (the token itself was fine).
_REFUSED = frozenset({RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION})


def completion_error(err: RPCError) -> CompletionError:
    """The handshake-obs error that ``err`` means."""
    error: CompletionError
    if err.status == RPCStatusCode.NOT_FOUND:
        error = ActivityAlreadyClosedError(f"activity already closed: {err.message}")
    elif err.status == RPCStatusCode.INVALID_ARGUMENT and "token" in err.message.lower():
        error = InvalidTaskTokenError(f"invalid task token: {err.message}")
    elif err.status in _REFUSED:
        error = CompletionRejectedError(f"temporal refused the call: {err.message}")
    elif err.status in _RETRYABLE:
        error = TemporalUnavailableError(f"temporal unavailable ({err.status.name}): {err.message}")
    else:
        error = CompletionError(f"completion failed ({err.status.name}): {err.message}")
    error.__cause__ = err
    return error


def sdk_error(err: TemporalError) -> CompletionError:
    """Any other temporalio error of a completion call: a handshake-obs error, with the
    SDK's own as its cause."""
    error = CompletionError(f"completion failed ({type(err).__name__}): {err}")
    error.__cause__ = err
    return error


def no_answer(timeout: timedelta, err: TimeoutError) -> TemporalUnavailableError:
    """A call that outlived the client-side guard: as if Temporal were unavailable."""
    error = TemporalUnavailableError(f"no answer within {timeout}")
    error.__cause__ = err
    return error


def is_retryable(error: CompletionError) -> bool:
    """Whether another attempt of the same call may succeed."""
    return isinstance(error, TemporalUnavailableError)
