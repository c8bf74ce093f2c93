"""The one instrumented completion path.

Every complete / fail / heartbeat / report-cancellation / reap, whether made through the
:class:`~handshake_obs.Completer`, the reaper or a plain ``AsyncActivityHandle`` on an
instrumented client, runs through :meth:`CompletionPath.run`: it finds the handoff, calls
Temporal with a timeout and bounded retries, classifies the answer, records the one outcome
in the ledger, and counts, times, logs and traces it (one span per call, in the handoff's
trace).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from opentelemetry.trace import Span
from temporalio.client import AsyncActivityIDReference
from temporalio.service import RPCError, RPCStatusCode

from .._errors import (
    ActivityAlreadyClosedError,
    CompletionError,
    CompletionRejectedError,
    HandoffAlreadyFinishedError,
    InvalidTaskTokenError,
    LedgerError,
    TemporalUnavailableError,
)
from .._records import FinishedOutcome, HandoffRecord
from .._tokens import token_fingerprint
from .._vocabulary import OUTCOME_OF_OPERATION, Component, ErrorType, Operation, Outcome
from ..config import HandshakeConfig
from ..ledger import HeartbeatResult, Ledger
from ..telemetry._logging import handoff_fields
from ..telemetry._metrics import HandshakeMetrics
from ..telemetry._tracing import HandshakeTracing, trace_exemplar

_log = structlog.get_logger("handshake_obs.completion")

#: Codes worth another try: Temporal (or the network to it) did not answer in time.
_RETRYABLE = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
#: Codes of a call Temporal understood and refused (the token itself was fine).
_REFUSED = frozenset({RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION})

#: True while a call runs inside :meth:`CompletionPath.run`, so that an instrumented client
#: underneath does not instrument the same call twice.
in_completion_path: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "handshake_obs_in_completion_path", default=False
)

#: The Temporal call; it receives the RPC timeout to pass on.
RpcCall = Callable[[timedelta | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CallResult:
    """What a completion-path call did."""

    operation: Operation
    #: The handoff the call was about (None: a token the ledger does not know).
    handoff: HandoffRecord | None
    #: For heartbeats: how the progress report was kept.
    heartbeat: HeartbeatResult | None = None


class CompletionPath:
    """Runs completion-path calls; shared by the completer and the client interceptor."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        metrics: HandshakeMetrics,
        config: HandshakeConfig,
        tracing: HandshakeTracing | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._config = config
        self._tracing = tracing if tracing is not None else HandshakeTracing(config)
        self._clock = clock

    @property
    def ledger(self) -> Ledger:
        """The ledger outcomes are recorded in."""
        return self._ledger

    def now(self) -> float:
        """The path's clock."""
        return self._clock()

    async def extend_deadline(self, record: HandoffRecord, deadline: float) -> HandoffRecord:
        """Move a pending handoff's deadline (raises if it has finished or is unknown)."""
        updated = await self._ledger.extend_deadline(record.handoff_id, deadline)
        _log.info("deadline extended", deadline=deadline, **handoff_fields(updated))
        return updated

    async def find(
        self, id_or_token: AsyncActivityIDReference | bytes, namespace: str | None
    ) -> HandoffRecord | None:
        """The handoff a token or activity reference points at (None if unknown)."""
        if isinstance(id_or_token, bytes):
            return await self._ledger.find_by_token(id_or_token)
        if id_or_token.workflow_id is None:
            return None
        return await self._ledger.find_by_activity(
            namespace, id_or_token.workflow_id, id_or_token.run_id, id_or_token.activity_id
        )

    async def run(
        self,
        operation: Operation,
        call: RpcCall,
        *,
        record: HandoffRecord | None,
        task_token: bytes | None,
        refuse_finished: bool,
        error_type: str | None = None,
        error_message: str | None = None,
        progress: Any = None,
        sequence: int | None = None,
    ) -> CallResult:
        """Make one completion-path call.

        ``record`` is the handoff found for the call (None: unknown to the ledger, e.g. a
        completion that overtook its record); ``task_token`` is the raw token when the
        caller has it, for such early outcomes. ``refuse_finished`` refuses a call on a
        handoff that already has its outcome without asking Temporal (the completer does;
        the client interceptor lets Temporal answer, as a plain client would).

        Raises a :class:`CompletionError` (its ``__cause__`` is the RPC error) or
        :class:`HandoffAlreadyFinishedError`.
        """
        failure_type = error_type if operation in (Operation.FAIL, Operation.REAP) else None
        with self._tracing.completion_span(
            operation, record, task_token=task_token, failure_type=failure_type, now=self._clock()
        ) as span:
            heartbeat = await self._run(
                operation,
                call,
                span,
                record=record,
                task_token=task_token,
                refuse_finished=refuse_finished,
                error_type=error_type,
                error_message=error_message,
                progress=progress,
                sequence=sequence,
            )
        return CallResult(operation, record, heartbeat)

    async def _run(
        self,
        operation: Operation,
        call: RpcCall,
        span: Span,
        *,
        record: HandoffRecord | None,
        task_token: bytes | None,
        refuse_finished: bool,
        error_type: str | None,
        error_message: str | None,
        progress: Any,
        sequence: int | None,
    ) -> HeartbeatResult | None:
        target = record.target if record else None
        if record is not None and not record.is_pending and refuse_finished:
            self._metrics.observe_error(target, ErrorType.ALREADY_FINISHED)
            raise HandoffAlreadyFinishedError(record.handoff_id, str(record.outcome))
        log = _log.bind(
            operation=operation.value,
            **(
                handoff_fields(record)
                if record
                else {"token_fingerprint": task_token and token_fingerprint(task_token)}
            ),
        )

        heartbeat: HeartbeatResult | None = None
        if operation is Operation.HEARTBEAT and record is not None and record.is_pending:
            heartbeat = await self._guard(
                self._ledger.heartbeat(record.handoff_id, progress, sequence, self._clock()),
                log,
            )
            if heartbeat is not None:
                self._tracing.heartbeat(span, accepted=heartbeat.accepted)
            if heartbeat is not None and not heartbeat.accepted:
                log.info(
                    "out-of-order progress ignored", sequence=sequence, kept=heartbeat.sequence
                )
                return heartbeat

        call_id: str | None = None
        if record is not None and record.is_pending:
            call_id = await self._guard(
                self._ledger.begin_call(record.handoff_id, self._call_deadline()), log
            )
        try:
            await self._call_with_retries(operation, call, log)
        except CompletionError as err:
            self._metrics.observe_error(target, ErrorType(err.error_type))
            finished = await self._after_failure(err, record, task_token, call_id, log)
            self._tracing.finished(span, finished)
            raise
        finished = await self._after_success(
            operation, record, task_token, call_id, error_type, error_message, log
        )
        self._tracing.finished(span, finished)
        return heartbeat

    # -- the RPC --------------------------------------------------------------------------

    async def _call_with_retries(
        self, operation: Operation, call: RpcCall, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        policy = self._config.rpc_retry
        timeout = self._config.rpc_timeout
        for attempt in range(1, policy.max_attempts + 1):
            started = time.perf_counter()
            token = in_completion_path.set(True)
            try:
                # The SDK enforces rpc_timeout; this guards against a call that ignores it.
                async with asyncio.timeout(timeout.total_seconds() + 5):
                    await call(timeout)
            except RPCError as err:
                error = _classify(err)
            except TimeoutError as err:
                error = TemporalUnavailableError(f"no answer within {timeout}")
                error.__cause__ = err
            else:
                return
            finally:
                in_completion_path.reset(token)
                self._metrics.observe_rpc(operation, time.perf_counter() - started)
            retryable = isinstance(error, TemporalUnavailableError)
            if not retryable or attempt == policy.max_attempts:
                raise error
            delay = policy.backoff(attempt)
            log.warning(
                "temporal unavailable, retrying", attempt=attempt, delay=delay, error=str(error)
            )
            self._tracing.retrying(attempt, delay)
            await asyncio.sleep(delay)

    def _call_deadline(self) -> float:
        policy = self._config.rpc_retry
        worst = policy.max_attempts * (self._config.rpc_timeout.total_seconds() + 5) + sum(
            policy.backoff(n) for n in range(1, policy.max_attempts)
        )
        return self._clock() + worst

    # -- recording ------------------------------------------------------------------------

    async def _after_success(
        self,
        operation: Operation,
        record: HandoffRecord | None,
        task_token: bytes | None,
        call_id: str | None,
        error_type: str | None,
        error_message: str | None,
        log: structlog.typing.FilteringBoundLogger,
    ) -> FinishedOutcome | None:
        """Record what a call that went through did; returns the outcome it recorded."""
        outcome = OUTCOME_OF_OPERATION.get(operation)
        now = self._clock()
        if outcome is None:  # a heartbeat: no outcome
            if record is not None and record.is_pending:
                if call_id is not None:
                    await self._guard(self._ledger.end_call(record.handoff_id, call_id), log)
                await self._extend_on_heartbeat(record, now, log)
            log.debug("heartbeat delivered")
            return None
        finished = None
        if record is not None:
            finished = await self._guard(
                self._ledger.finish(
                    record.handoff_id,
                    outcome,
                    now,
                    error_type=error_type,
                    error_message=error_message,
                    ends_call=call_id,
                ),
                log,
            )
        elif task_token is not None:
            finished = await self._guard(
                self._ledger.record_early_outcome(
                    task_token, outcome, now, error_type=error_type, error_message=error_message
                ),
                log,
            )
            if finished is None:
                log.info("outcome kept until its handoff is recorded", outcome=outcome.value)
        if finished is not None:
            self._metrics.observe_finished(finished, exemplar=trace_exemplar())
            log.info(
                "handoff finished",
                outcome=outcome.value,
                error_type=error_type,
                latency_seconds=round(finished.latency_seconds, 3),
            )
        return finished

    async def _extend_on_heartbeat(
        self, record: HandoffRecord, now: float, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        extension = self._config.policy(record.target).heartbeat_extends_by
        if extension is None:
            return
        deadline = now + extension.total_seconds()
        if record.deadline is not None and deadline <= record.deadline:
            return
        try:
            await self._guard(self._ledger.extend_deadline(record.handoff_id, deadline), log)
        except HandoffAlreadyFinishedError:
            return  # finished meanwhile: nothing left to extend
        log.info("deadline extended by heartbeat", deadline=deadline)

    async def _after_failure(
        self,
        error: CompletionError,
        record: HandoffRecord | None,
        task_token: bytes | None,
        call_id: str | None,
        log: structlog.typing.FilteringBoundLogger,
    ) -> FinishedOutcome | None:
        """Record what a failed call tells; returns the outcome it recorded, if any."""
        now = self._clock()
        if isinstance(error, ActivityAlreadyClosedError):
            finished = None
            if record is not None and record.is_pending:
                finished = await self._guard(
                    self._ledger.finish_closed(record.handoff_id, now, call_id=call_id), log
                )
            elif record is None and task_token is not None:
                finished = await self._guard(
                    self._ledger.record_early_outcome(
                        task_token, Outcome.ALREADY_CLOSED, now, error_type="already_closed"
                    ),
                    log,
                )
            if finished is not None:
                self._metrics.observe_finished(finished, exemplar=trace_exemplar())
            log.info("activity already closed in temporal", recorded=finished is not None)
            return finished
        if call_id is not None and record is not None:
            await self._guard(self._ledger.end_call(record.handoff_id, call_id), log)
        log.warning("completion call failed", error_type=error.error_type, error=str(error))
        return None

    async def _guard(
        self, operation: Awaitable[Any], log: structlog.typing.FilteringBoundLogger
    ) -> Any:
        """Run a ledger write after (or around) the RPC: a ledger failure there is logged and
        counted, never allowed to undo or hide what Temporal did."""
        try:
            return await operation
        except LedgerError as err:
            self._metrics.observe_instrumentation_error(Component.LEDGER)
            log.error("ledger write failed", error=str(err))
            return None


def _classify(err: RPCError) -> CompletionError:
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
