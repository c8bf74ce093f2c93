"""Span names and attribute keys: the tracing contract, in one place.

Dashboards, trace queries and ``docs/tracing.md`` rely on these strings. Three sources:

* OpenTelemetry semantic conventions, where one exists (``error.type``; exceptions are
  recorded as the conventional ``exception`` events by the SDK);
* the Temporal SDK's own span attributes (``temporalWorkflowID``...), reused so that one
  query finds handshake-obs spans next to ``RunActivity`` and ``RunWorkflow``;
* ``handshake.*`` for what only handshake-obs knows.

Span names follow the conventions' ``{operation} {destination}`` shape with a bounded
destination: the handoff's target label (a configured target, or ``other``).
"""

from __future__ import annotations

from typing import Final

# -- span names ------------------------------------------------------------------------

#: The handoff: the activity gives its token (or handoff id) to a target. PRODUCER span,
#: child of the span current in the activity (``RunActivity:<type>``).
HANDOFF_SPAN: Final = "handoff"
#: A completion-path call is named by its operation (``complete``, ``fail``, ``heartbeat``,
#: ``report_cancellation``, ``reap``) followed by the target: ``complete agent``.


def span_name(operation: str, target: str | None) -> str:
    """``{operation} {target}``, or the operation alone when the target is unknown."""
    return f"{operation} {target}" if target else operation


# -- OpenTelemetry semantic conventions ---------------------------------------------------

#: Class of error a call ended with (low cardinality: handshake-obs's ``ErrorType`` values,
#: or the exception's class name). Set only when the span's status is ERROR.
ERROR_TYPE: Final = "error.type"

# -- the Temporal SDK's span attributes (temporalio.contrib.opentelemetry) ----------------

WORKFLOW_ID: Final = "temporalWorkflowID"
RUN_ID: Final = "temporalRunID"
ACTIVITY_ID: Final = "temporalActivityID"
ACTIVITY_TYPE: Final = "temporalActivityType"

# -- handshake-obs -----------------------------------------------------------------------

#: The handoff id (never the token).
HANDOFF_ID: Final = "handshake.handoff.id"
#: The handoff's target, as given (spans are not metric labels: not bounded).
TARGET: Final = "handshake.handoff.target"
#: The activity attempt the token belongs to.
ATTEMPT: Final = "handshake.handoff.attempt"
#: When the handoff is due, ISO 8601 UTC (absent: no deadline).
DEADLINE: Final = "handshake.handoff.deadline"
#: Short non-secret name of the task token.
TOKEN_FINGERPRINT: Final = "handshake.token.fingerprint"  # noqa: S105 - a key, not a secret
#: Seconds from the handoff to this completion-path call (double).
PENDING_DURATION: Final = "handshake.handoff.pending_duration"
#: The completion-path operation: ``complete``, ``fail``, ``heartbeat``,
#: ``report_cancellation``, ``reap``.
OPERATION: Final = "handshake.operation"
#: The outcome this call recorded for the handoff (absent when it recorded none, e.g. a
#: heartbeat, or a call that lost a race).
OUTCOME: Final = "handshake.outcome"
#: For ``fail`` and ``reap``: the ``ApplicationError`` type the workflow receives.
FAILURE_TYPE: Final = "handshake.failure.type"
#: For ``heartbeat``: False when an out-of-order progress report was ignored.
HEARTBEAT_ACCEPTED: Final = "handshake.heartbeat.accepted"
#: Set on the span current when the handoff began (``RunActivity:<type>``): the activity
#: ended by completing asynchronously, its real outcome comes later (in the handoff's trace).
COMPLETED_ASYNC: Final = "handshake.completed_async"

# -- span events -------------------------------------------------------------------------

#: On the ``RunActivity`` span: the activity handed its token off and completes async.
COMPLETED_ASYNC_EVENT: Final = "handshake.completed_async"
#: On a completion-path span: a Temporal RPC failed as unavailable and is retried.
RPC_RETRY_EVENT: Final = "handshake.rpc.retry"
#: Attributes of the retry event.
RETRY_ATTEMPT: Final = "handshake.rpc.attempt"
RETRY_DELAY: Final = "handshake.rpc.retry_delay"

# -- links -------------------------------------------------------------------------------

#: On a completion span's link to the caller's own span (when it belongs to another trace).
LINK_ROLE: Final = "handshake.link.role"
LINK_ROLE_CALLER: Final = "caller"
