"""The exceptions handshake-obs raises.

::

    HandshakeError
    ├── ConfigurationError        bad configuration or ledger URL
    │   ├── TemporalConnectionError  Temporal refused or did not answer the connection
    │   └── MissingExtraError        a part used without the extra that installs it
    ├── NotInActivityError        handoff() used outside an instrumented activity
    ├── LedgerError               the ledger could not be read or written
    ├── UnknownHandoffError       no handoff with that id (or for that activity)
    ├── HandoffAlreadyFinishedError  the handoff already has its one outcome
    ├── DeadlineInPastError       extend() asked for a deadline that has passed
    ├── DeadlinePastTemporalTimeoutError  a deadline past Temporal's own timeout
    └── CompletionError           a completion RPC did not go through
        ├── ActivityAlreadyClosedError  Temporal: NOT_FOUND (completed elsewhere,
        │                               timed out, retried)
        ├── InvalidTaskTokenError       Temporal: INVALID_ARGUMENT (not a task token)
        ├── CompletionRejectedError     Temporal refused the call itself (e.g. a
        │                               cancellation that was never requested)
        └── TemporalUnavailableError    UNAVAILABLE / DEADLINE_EXCEEDED after retries;
                                        the handoff stays pending and a retry may succeed
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from ._vocabulary import ErrorType


class HandshakeError(Exception):
    """Base class of every error handshake-obs raises.

    ``error_type`` is the label value under which the error is counted
    (``handshake_completion_errors_total``) and the code the HTTP API answers with.
    """

    error_type: ClassVar[ErrorType] = ErrorType.OTHER


class ConfigurationError(HandshakeError):
    """The configuration (or ledger URL) is invalid."""


class TemporalConnectionError(ConfigurationError):
    """Connecting to Temporal failed; the message says why without any secret in it.

    ``retryable`` is True when waiting may help (nothing answers yet, a timeout) and False
    when the configuration itself is refused (a certificate, a key, the API key).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class MissingExtraError(ConfigurationError, ImportError):
    """A part of handshake-obs was imported without the extra that installs what it needs.

    An ``ImportError`` too, so that code probing for an optional part keeps working.
    """

    def __init__(self, part: str, extra: str, missing: list[str]) -> None:
        super().__init__(
            f"{part} needs the {extra!r} extra (missing: {', '.join(missing)}): "
            f"pip install 'handshake-obs[{extra}]'"
        )
        self.extra = extra


class NotInActivityError(HandshakeError):
    """``handoff()`` was used outside an activity run by an instrumented worker."""


class LedgerError(HandshakeError):
    """The ledger could not be read or written."""

    error_type = ErrorType.LEDGER_UNAVAILABLE


class UnknownHandoffError(HandshakeError):
    """No handoff is recorded under this id."""

    error_type = ErrorType.UNKNOWN_HANDOFF

    def __init__(self, handoff_id: str) -> None:
        super().__init__(f"unknown handoff {handoff_id!r}")
        self.handoff_id = handoff_id


class HandoffAlreadyFinishedError(HandshakeError):
    """The handoff already has its outcome; a second one is refused."""

    error_type = ErrorType.ALREADY_FINISHED

    def __init__(self, handoff_id: str, outcome: str) -> None:
        super().__init__(f"handoff {handoff_id!r} already finished with outcome {outcome!r}")
        self.handoff_id = handoff_id
        self.outcome = outcome


class DeadlineInPastError(HandshakeError, ValueError):
    """``extend`` was given a deadline that is not in the future; nothing was changed."""

    error_type = ErrorType.DEADLINE_IN_PAST

    def __init__(self, handoff_id: str, seconds_ago: float) -> None:
        super().__init__(
            f"the deadline asked for handoff {handoff_id!r} passed {seconds_ago:.3f} s ago: "
            "a deadline must be in the future"
        )
        self.handoff_id = handoff_id


class DeadlinePastTemporalTimeoutError(HandshakeError):
    """A deadline was asked for past the moment Temporal itself closes the activity attempt
    (its start-to-close or schedule-to-close timeout): the handoff would show as pending
    for an activity that no longer exists."""

    error_type = ErrorType.DEADLINE_PAST_TEMPORAL_TIMEOUT

    def __init__(self, handoff_id: str, deadline: float, temporal_closes_at: float) -> None:
        closes = datetime.fromtimestamp(temporal_closes_at, UTC).isoformat()
        asked = datetime.fromtimestamp(deadline, UTC).isoformat()
        super().__init__(
            f"handoff {handoff_id!r}: deadline {asked} is past {closes}, when Temporal's own "
            "timeout closes the activity attempt; extend to that time at the latest, or "
            "give the activity a longer start-to-close / schedule-to-close timeout"
        )
        self.handoff_id = handoff_id
        self.deadline = deadline
        self.temporal_closes_at = temporal_closes_at


class CompletionError(HandshakeError):
    """A completion, failure, heartbeat or cancellation did not reach Temporal."""


class ActivityAlreadyClosedError(CompletionError):
    """Temporal no longer has this activity attempt open (NOT_FOUND)."""

    error_type = ErrorType.ALREADY_CLOSED


class InvalidTaskTokenError(CompletionError):
    """Temporal could not read the task token (INVALID_ARGUMENT)."""

    error_type = ErrorType.INVALID_TOKEN


class CompletionRejectedError(CompletionError):
    """Temporal understood the token but refused the call (INVALID_ARGUMENT,
    FAILED_PRECONDITION), e.g. reporting a cancellation that was never requested."""

    error_type = ErrorType.REJECTED


class TemporalUnavailableError(CompletionError):
    """Temporal did not answer in time after the configured retries."""

    error_type = ErrorType.UNAVAILABLE
