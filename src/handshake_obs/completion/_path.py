"""The one instrumented completion path.

Every complete / fail / heartbeat / report-cancellation / reap, whether made through the
:class:`~handshake_obs.Completer`, the reaper or a plain ``AsyncActivityHandle`` on an
instrumented client, runs through one typed entry point of :class:`CompletionPath`; each is
the same few steps of one :class:`~._call.Call` (open it, send its RPC, record what Temporal
answered), so that a call is timed, retried, recorded, counted, logged and traced alike
whoever made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from temporalio.client import AsyncActivityIDReference

from .._errors import DeadlinePastTemporalTimeoutError, LedgerError, UnknownHandoffError
from .._records import HandoffRecord
from .._vocabulary import DEADLINE_EXCEEDED_TYPE, OUTCOME_OF_OPERATION, Operation
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
    ) -> None:
        tracing = tracing if tracing is not None else HandshakeTracing(config)
        self._parts = PathParts(
            ledger=ledger,
            metrics=metrics,
            config=config,
            tracing=tracing,
            reporter=reporter if reporter is not None else OutcomeReporter(metrics),
            rpc=rpc if rpc is not None else RetryingRpc(config, metrics, tracing),
            clock=clock,
        )
        self._ledger = ledger
        self._metrics = metrics
        self._clock = clock

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
        one kept is ignored and not sent). Records no outcome; may extend the deadline."""
        with open_call(self._parts, Operation.HEARTBEAT, subject) as call:
            kept = await call.keep_progress(progress, sequence)
            if kept is None or kept.accepted:
                await call.send(rpc)
                await call.heartbeat_delivered()
        return CallResult(Operation.HEARTBEAT, subject.record, kept)

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
        with open_call(self._parts, operation, subject, failure_type=error_type) as call:
            await call.send(rpc)
            await call.record_outcome(
                OUTCOME_OF_OPERATION[operation], error_type=error_type, error_message=error_message
            )
        return CallResult(operation, subject.record)

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
                return ref, Subject(await self._ledger.find_by_token(ref), ref)
            record = await self._ledger.get(ref)
            if record is None:
                raise UnknownHandoffError(ref)
            return record.task_token, Subject(record, record.task_token)

    async def observed(self, id_or_token: AsyncActivityIDReference | bytes) -> Subject:
        """What a plain handle's call is about (the client interceptor): Temporal answers
        for finished handoffs, and a ledger that cannot be read leaves the call unobserved
        rather than stopping it."""
        token = id_or_token if isinstance(id_or_token, bytes) else None
        try:
            record = await self._find_observed(id_or_token)
        except LedgerError as err:
            _log.warning("handoff not looked up: ledger unavailable", error=str(err))
            record = None
        return Subject(record, token, refuse_finished=False)

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
            closes = record.temporal_closes_at
            if closes is not None and deadline > closes:
                raise DeadlinePastTemporalTimeoutError(record.handoff_id, deadline, closes)
            updated = await self._ledger.extend_deadline(record.handoff_id, deadline)
        _log.info("deadline extended", deadline=deadline, **handoff_fields(updated))
        return updated
