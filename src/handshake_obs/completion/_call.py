"""One call on the completion path: the core every operation of the path shares.

::

    open_call()            a span in the handoff's trace; a finished handoff refused (if the
                           subject asks); the log context
    Call.send()            marked in flight in the ledger; the RPC with timeout and retries;
                           a call Temporal did not accept counted, NOT_FOUND recorded as
                           already_closed, the error raised
    Call.record_outcome()  the outcome in the ledger (kept for later if the token is not
                           recorded yet), reported once by the OutcomeReporter

Ledger writes after the RPC never undo or hide what Temporal did: a failure there is logged
and counted as an instrumentation error (:meth:`Call._guard`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from opentelemetry.trace import Span

from .._errors import (
    ActivityAlreadyClosedError,
    CompletionError,
    HandoffAlreadyFinishedError,
    HandshakeError,
    LedgerError,
)
from .._records import HandoffRecord
from .._tokens import token_fingerprint
from .._vocabulary import CloseReason, Component, Operation, Outcome
from ..config import HandshakeConfig
from ..ledger import HeartbeatResult, Ledger
from ..telemetry._logging import handoff_fields
from ..telemetry._metrics import HandshakeMetrics
from ..telemetry._outcome_reporter import OutcomeReporter
from ..telemetry._tracing import HandshakeTracing
from ._rpc import RetryingRpc, RpcCall

_log = structlog.get_logger("handshake_obs.completion")

_T = TypeVar("_T")

Log = structlog.typing.FilteringBoundLogger


@dataclass(frozen=True, slots=True)
class Subject:
    """What a completion-path call is about, as its caller found it."""

    #: The handoff (None: unknown to the ledger, e.g. a completion that overtook its record).
    record: HandoffRecord | None
    #: The raw token when the caller has it: an outcome for an unknown token is kept with it
    #: until its handoff is recorded.
    task_token: bytes | None
    #: Refuse a handoff that already has its outcome without asking Temporal (the completer
    #: and the reaper do; a plain handle lets Temporal answer, as without handshake-obs).
    refuse_finished: bool = True

    @property
    def target(self) -> str | None:
        """The handoff's target (None: unknown, counted as ``other``)."""
        return self.record.target if self.record is not None else None


@dataclass(frozen=True, slots=True)
class PathParts:
    """What every call on one completion path uses."""

    ledger: Ledger
    metrics: HandshakeMetrics
    config: HandshakeConfig
    tracing: HandshakeTracing
    reporter: OutcomeReporter
    rpc: RetryingRpc
    clock: Callable[[], float]


@contextmanager
def refusals(
    metrics: HandshakeMetrics, target: str | None, log: Log | None = None
) -> Iterator[None]:
    """A handshake-obs error raised inside refuses the call: counted, logged, raised."""
    try:
        yield
    except HandshakeError as err:
        metrics.observe_error(target, err.error_type)
        (log or _log).info(
            "completion call refused", error_type=err.error_type.value, error=str(err)
        )
        raise


@contextmanager
def open_call(
    parts: PathParts, operation: Operation, subject: Subject, *, failure_type: str | None = None
) -> Iterator[Call]:
    """A call, inside its span (current for the call; an error raised inside marks it). A
    finished handoff is refused here when the subject asks for it."""
    record = subject.record
    with parts.tracing.completion_span(
        operation,
        record,
        task_token=subject.task_token,
        failure_type=failure_type,
        now=parts.clock(),
    ) as span:
        if record is not None:
            identity = handoff_fields(record)
        else:
            fingerprint = subject.task_token and token_fingerprint(subject.task_token)
            identity = {"token_fingerprint": fingerprint}
        log = _log.bind(operation=operation.value, **identity)
        if record is not None and not record.is_pending and subject.refuse_finished:
            with refusals(parts.metrics, record.target, log):
                raise HandoffAlreadyFinishedError(record.handoff_id, str(record.outcome))
        yield Call(parts, operation, subject, span, log)


class Call:
    """One call in progress: what it is about, its span and log context, its in-flight
    mark in the ledger."""

    def __init__(
        self, parts: PathParts, operation: Operation, subject: Subject, span: Span, log: Log
    ) -> None:
        self._parts = parts
        self._ledger = parts.ledger
        self._operation = operation
        self._subject = subject
        self._span = span
        self._log = log
        #: The ledger's id of this call's in-flight mark (None: none was set).
        self._call_id: str | None = None

    @property
    def _pending(self) -> HandoffRecord | None:
        """The handoff, when the ledger had it pending as the call began."""
        record = self._subject.record
        return record if record is not None and record.is_pending else None

    async def send(self, rpc: RpcCall) -> None:
        """Make the RPC, marked in flight on a pending handoff; a call Temporal did not
        accept is counted, what it tells is recorded, and its error raised."""
        if (record := self._pending) is not None:
            until = self._parts.clock() + self._parts.rpc.worst_case_seconds()
            self._call_id = await self._guard(self._ledger.begin_call(record.handoff_id, until))
        try:
            await self._parts.rpc.send(self._operation, rpc, self._log)
        except CompletionError as err:
            self._parts.metrics.observe_error(self._subject.target, err.error_type)
            await self._record_failure(err)
            raise

    async def record_outcome(
        self, outcome: Outcome, *, error_type: str | None = None, error_message: str | None = None
    ) -> None:
        """Temporal accepted the call: record its outcome (for an unknown token, keep it
        until the handoff is recorded) and report it if this call is the one that did."""
        record, token = self._subject.record, self._subject.task_token
        now = self._parts.clock()
        finished = None
        if record is not None:
            finished = await self._guard(
                self._ledger.finish(
                    record.handoff_id,
                    outcome,
                    now,
                    error_type=error_type,
                    error_message=error_message,
                    ends_call=self._call_id,
                )
            )
        elif token is not None:
            finished = await self._guard(
                self._ledger.record_early_outcome(
                    token, outcome, now, error_type=error_type, error_message=error_message
                )
            )
            if finished is None:
                self._log.info("outcome kept until its handoff is recorded", outcome=outcome.value)
        if finished is not None:
            self._parts.reporter.report(
                finished, "handoff finished", log=self._log, span=self._span, error_type=error_type
            )

    async def keep_progress(self, progress: Any, sequence: int | None) -> HeartbeatResult | None:
        """Keep a heartbeat's progress on a pending handoff (None: none kept)."""
        if (record := self._pending) is None:
            return None
        kept = await self._guard(
            self._ledger.heartbeat(record.handoff_id, progress, sequence, self._parts.clock())
        )
        if kept is not None:
            self._parts.tracing.heartbeat(self._span, accepted=kept.accepted)
            if not kept.accepted:
                self._log.info(
                    "out-of-order progress ignored", sequence=sequence, kept=kept.sequence
                )
        return kept

    async def heartbeat_delivered(self) -> None:
        """Temporal has the heartbeat: the call is no longer in flight, and the target's
        policy may move the deadline."""
        if (record := self._pending) is not None:
            if self._call_id is not None:
                await self._guard(self._ledger.end_call(record.handoff_id, self._call_id))
            await self._extend_on_heartbeat(record)
        self._log.debug("heartbeat delivered")

    async def _record_failure(self, error: CompletionError) -> None:
        """Temporal did not accept the call. NOT_FOUND means it closed the activity: the
        handoff ends ``already_closed`` (unless another call in flight may have won); any
        other error leaves it pending."""
        record, token = self._subject.record, self._subject.task_token
        if not isinstance(error, ActivityAlreadyClosedError):
            if self._call_id is not None and record is not None:
                await self._guard(self._ledger.end_call(record.handoff_id, self._call_id))
            self._log.warning(
                "completion call failed", error_type=error.error_type.value, error=str(error)
            )
            return
        now = self._parts.clock()
        finished = None
        if (pending := self._pending) is not None:
            finished = await self._guard(
                self._ledger.finish_closed(pending.handoff_id, now, call_id=self._call_id)
            )
        elif record is None and token is not None:
            finished = await self._guard(
                self._ledger.record_early_outcome(
                    token, Outcome.ALREADY_CLOSED, now, error_type=CloseReason.NOT_FOUND.value
                )
            )
        event = "activity already closed in temporal"
        if finished is not None:
            self._parts.reporter.report(
                finished, event, log=self._log, span=self._span, recorded=True
            )
        else:
            self._log.info(event, recorded=False)

    async def _extend_on_heartbeat(self, record: HandoffRecord) -> None:
        """The target's policy may move the deadline on each delivered heartbeat."""
        extension = self._parts.config.policy(record.target).heartbeat_extends_by
        if extension is None:
            return
        deadline = self._parts.clock() + extension.total_seconds()
        closes = record.temporal_closes_at
        if closes is not None:
            # Never past Temporal's own timeout: heartbeats do not move that one.
            deadline = min(deadline, closes)
        if record.deadline is not None and deadline <= record.deadline:
            return
        try:
            await self._guard(self._ledger.extend_deadline(record.handoff_id, deadline))
        except HandoffAlreadyFinishedError:
            return  # finished meanwhile: nothing left to extend
        self._log.info("deadline extended by heartbeat", deadline=deadline)

    async def _guard(self, write: Awaitable[_T]) -> _T | None:
        """Run a ledger write around the RPC: a ledger failure there is logged and counted,
        never allowed to undo or hide what Temporal did (None: the write failed)."""
        try:
            return await write
        except LedgerError as err:
            self._parts.metrics.observe_instrumentation_error(Component.LEDGER)
            self._log.error("ledger write failed", error=str(err))
            return None
