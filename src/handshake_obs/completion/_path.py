"""The one instrumented completion path.

Every complete / fail / heartbeat / report-cancellation / reap, whether made through the
:class:`~handshake_obs.Completer`, the reaper or a plain ``AsyncActivityHandle`` on an
instrumented client, runs through one typed entry point of :class:`CompletionPath`; each is
the same few steps of one :class:`~._call.Call` (open it, send its RPC, record what Temporal
answered), so that a call is timed, retried, recorded, counted, logged and traced alike
whoever made it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from temporalio.client import AsyncActivityIDReference

from .._delayed_writes import DelayedWrites, bounded
from .._errors import (
    ActivityAlreadyClosedError,
    DeadlineInPastError,
    DeadlinePastTemporalTimeoutError,
    HandoffAlreadyFinishedError,
    LedgerError,
    UnknownHandoffError,
)
from .._records import CallIntent, HandoffRecord
from .._vocabulary import DEADLINE_EXCEEDED_TYPE, OUTCOME_OF_OPERATION, Operation, Outcome
from ..config import HandshakeConfig
from ..ledger import HeartbeatResult, Ledger
from ..telemetry._logging import handoff_fields
from ..telemetry._metrics import HandshakeMetrics
from ..telemetry._outcome_reporter import OutcomeReporter
from ..telemetry._tracing import HandshakeTracing
from ._call import PathParts, Subject, open_call, refusals
from ._rpc import RetryingRpc, RpcCall

_log = structlog.get_logger("handshake_obs.completion")

#: A handoff named by its id (str) or by the attempt's raw task token (bytes).
HandoffRef = str | bytes

#: What a refused lookup says when a token names no recorded handoff.
_UNKNOWN_TOKEN = "(token not in the ledger)"  # noqa: S105 - a message, not a secret


@dataclass(frozen=True, slots=True)
class CallResult:
    """What a completion-path call did."""

    operation: Operation
    #: The handoff the call was about (None: a token the ledger does not know).
    handoff: HandoffRecord | None
    #: For heartbeats: how the progress report was kept.
    heartbeat: HeartbeatResult | None = None
    #: For finishing calls Temporal accepted: the outcome this call is recorded as.
    outcome: Outcome | None = None
    #: True when Temporal accepted the call but the ledger has not taken its outcome yet:
    #: it is recorded in the background as soon as the ledger is writable.
    recording_delayed: bool = False
    #: For heartbeats: Temporal answered that the activity should stop (its cancellation was
    #: requested, or it was paused or reset).
    cancel_requested: bool = False


class CompletionPath:
    """Runs completion-path calls; shared by the completer, the reaper and the client
    interceptor of one :class:`~handshake_obs.Handshake`."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        metrics: HandshakeMetrics,
        config: HandshakeConfig,
        tracing: HandshakeTracing | None = None,
        reporter: OutcomeReporter | None = None,
        rpc: RetryingRpc | None = None,
        clock: Callable[[], float] = time.time,
        delayed: DelayedWrites | None = None,
    ) -> None:
        tracing = tracing if tracing is not None else HandshakeTracing(config)
        #: Writes that outlived their bound, finished in the background.
        self.delayed = delayed if delayed is not None else DelayedWrites(metrics)
        self._parts = PathParts(
            ledger=ledger,
            metrics=metrics,
            config=config,
            tracing=tracing,
            reporter=reporter if reporter is not None else OutcomeReporter(metrics),
            rpc=rpc if rpc is not None else RetryingRpc(config, metrics, tracing),
            clock=clock,
            delayed=self.delayed,
        )
        self._ledger = ledger
        self._metrics = metrics
        self._clock = clock
        self._bound = config.ledger_call_timeout.total_seconds()
        #: The finishing call in progress for each handoff in this process: concurrent
        #: calls for the same handoff wait for it and take its answer (one Temporal call).
        self._finishing_now: dict[str, asyncio.Future[Outcome | None]] = {}

    @property
    def ledger(self) -> Ledger:
        """The ledger outcomes are recorded in."""
        return self._ledger

    # -- the five operations ----------------------------------------------------------------

    async def complete(self, subject: Subject, rpc: RpcCall) -> CallResult:
        """Complete the activity; ``completed`` once Temporal accepts."""
        return await self._finishing(Operation.COMPLETE, subject, rpc)

    async def fail(
        self, subject: Subject, rpc: RpcCall, *, error_type: str, message: str
    ) -> CallResult:
        """Fail the activity with an ``ApplicationError`` of ``error_type``; ``failed``."""
        return await self._finishing(
            Operation.FAIL, subject, rpc, error_type=error_type, error_message=message
        )

    async def report_cancellation(self, subject: Subject, rpc: RpcCall) -> CallResult:
        """Tell Temporal the activity accepted its cancellation; ``canceled``."""
        return await self._finishing(Operation.REPORT_CANCELLATION, subject, rpc)

    async def reap(self, record: HandoffRecord, rpc: RpcCall, *, message: str) -> CallResult:
        """Fail a handoff past its deadline with ``HandoffDeadlineExceeded``; ``reaped``."""
        return await self._finishing(
            Operation.REAP,
            Subject(record, record.task_token),
            rpc,
            error_type=DEADLINE_EXCEEDED_TYPE,
            error_message=message,
        )

    async def heartbeat(
        self, subject: Subject, rpc: RpcCall, *, progress: Any, sequence: int | None
    ) -> CallResult:
        """Keep ``progress`` in the ledger, then send it to Temporal (a report older than the
        one kept is ignored and not sent). Records no outcome; may extend the deadline.

        When Temporal answers that the activity should stop, the heartbeat was delivered all
        the same: the result says ``cancel_requested`` (nothing is raised)."""
        cancel_requested = False
        with open_call(self._parts, Operation.HEARTBEAT, subject) as call:
            kept = await call.keep_progress(progress, sequence)
            if kept is None or kept.accepted:
                cancel_requested = await call.send_heartbeat(rpc)
                await call.heartbeat_delivered()
        if kept is not None and cancel_requested:
            kept = dataclasses.replace(kept, cancel_requested=True)
        return CallResult(
            Operation.HEARTBEAT, subject.record, kept, cancel_requested=cancel_requested
        )

    async def _finishing(
        self,
        operation: Operation,
        subject: Subject,
        rpc: RpcCall,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> CallResult:
        """An operation whose success is the handoff's outcome."""
        record = subject.record
        if record is None or not subject.refuse_finished:
            # A plain handle's calls all go to Temporal, as without handshake-obs.
            return await self._finish_once(operation, subject, rpc, error_type, error_message)
        handoff_id = record.handoff_id
        while (first := self._finishing_now.get(handoff_id)) is not None:
            # Another call for this handoff is on its way: its answer is this one's too.
            ended = await asyncio.shield(first)
            if ended is not None:
                with refusals(self._metrics, record.target):
                    raise HandoffAlreadyFinishedError(handoff_id, ended.value)
        mine: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._finishing_now[handoff_id] = mine
        ended = None
        try:
            result = await self._finish_once(operation, subject, rpc, error_type, error_message)
            ended = result.outcome
        except HandoffAlreadyFinishedError as err:
            ended = next((o for o in Outcome if o.value == err.outcome), None)
            raise
        except ActivityAlreadyClosedError:
            ended = Outcome.ALREADY_CLOSED  # Temporal closed it: a waiter's call would be too
            raise
        finally:
            del self._finishing_now[handoff_id]
            mine.set_result(ended)
        return result

    async def _finish_once(
        self,
        operation: Operation,
        subject: Subject,
        rpc: RpcCall,
        error_type: str | None,
        error_message: str | None,
    ) -> CallResult:
        outcome = OUTCOME_OF_OPERATION[operation]
        with open_call(self._parts, operation, subject, failure_type=error_type) as call:
            await call.send(rpc, CallIntent(outcome, error_type, error_message))
            recorded = await call.record_outcome(
                outcome, error_type=error_type, error_message=error_message
            )
        return CallResult(
            operation, subject.record, outcome=outcome, recording_delayed=recorded is True
        )

    # -- finding what a call is about -----------------------------------------------------

    async def lookup(self, ref: HandoffRef) -> tuple[bytes, Subject]:
        """The token to call Temporal with and the handoff ``ref`` names, for a caller that
        refuses finished handoffs (the completer).

        By id, the handoff must be recorded (else :class:`UnknownHandoffError`); by token,
        an unknown one is a subject without a record, whose outcome is kept for later. A
        lookup that fails (unknown id, ledger unavailable) is a refused call: counted.
        """
        with refusals(self._metrics, None):
            if isinstance(ref, bytes):
                return ref, Subject(await self._read(self._ledger.find_by_token(ref)), ref)
            record = await self._read(self._ledger.get(ref))
            if record is None:
                raise UnknownHandoffError(ref)
            return record.task_token, Subject(record, record.task_token)

    async def _read(self, read: Awaitable[HandoffRecord | None]) -> HandoffRecord | None:
        """A lookup within the ledger's bound (past it: ``LedgerError``)."""
        try:
            return await bounded(asyncio.ensure_future(read), self._bound)
        except TimeoutError:
            raise LedgerError(f"the ledger did not answer within {self._bound:g} s") from None

    async def observed(self, id_or_token: AsyncActivityIDReference | bytes) -> Subject:
        """What a plain handle's call is about (the client interceptor): Temporal answers
        for finished handoffs, and a ledger that cannot be read leaves the call unobserved
        rather than stopping it."""
        token = id_or_token if isinstance(id_or_token, bytes) else None
        try:
            record = await self._read(self._find_observed(id_or_token))
        except LedgerError as err:
            _log.warning("handoff not looked up: ledger unavailable", error=str(err))
            record = None
        return Subject(record, token, refuse_finished=False, refuse_without_ledger=False)

    async def _find_observed(
        self, id_or_token: AsyncActivityIDReference | bytes
    ) -> HandoffRecord | None:
        if isinstance(id_or_token, bytes):
            return await self._ledger.find_by_token(id_or_token)
        if id_or_token.workflow_id is None:
            # A standalone activity: its run id is the activity's own.
            return await self._ledger.find_standalone(
                None, id_or_token.activity_id, id_or_token.run_id
            )
        return await self._ledger.find_by_activity(
            None, id_or_token.workflow_id, id_or_token.run_id, id_or_token.activity_id
        )

    # -- deadlines --------------------------------------------------------------------------

    async def extend(self, ref: HandoffRef, until: datetime | timedelta) -> HandoffRecord:
        """Move a pending handoff's deadline to ``until`` (an aware datetime, or a duration
        from now). An unknown or finished handoff, or an unavailable ledger, is a refused
        call: raised and counted."""
        with refusals(self._metrics, None):
            record = await (
                self._ledger.find_by_token(ref) if isinstance(ref, bytes) else self._ledger.get(ref)
            )
            if record is None:
                raise UnknownHandoffError(_UNKNOWN_TOKEN if isinstance(ref, bytes) else ref)
        if isinstance(until, timedelta):
            deadline = self._clock() + until.total_seconds()
        elif until.tzinfo is None:
            raise ValueError("a deadline must be timezone-aware")
        else:
            deadline = until.timestamp()
        with refusals(self._metrics, record.target):
            if (late := self._clock() - deadline) >= 0:
                raise DeadlineInPastError(record.handoff_id, late)
            closes = record.temporal_closes_at
            if closes is not None and deadline > closes:
                raise DeadlinePastTemporalTimeoutError(record.handoff_id, deadline, closes)
            updated = await self._ledger.extend_deadline(record.handoff_id, deadline)
        _log.info("deadline extended", deadline=deadline, **handoff_fields(updated))
        return updated
