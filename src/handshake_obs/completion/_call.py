"""One call on the completion path: the core every operation of the path shares.

::

    open_call()            a span in the handoff's trace; a finished handoff refused (if the
                           subject asks); the log context
    Call.send()            marked in flight in the ledger with its intent (the outcome it
                           records if Temporal accepts) BEFORE the RPC: a mark that cannot be
                           written within ``ledger_call_timeout`` refuses the call
                           (``LedgerError``, nothing sent) unless it is a plain handle's;
                           the RPC with timeout and retries; a call Temporal did not accept
                           counted, NOT_FOUND recorded as already_closed, the error raised
    Call.record_outcome()  the outcome in the ledger (kept for later if the token is not
                           recorded yet), reported once by the OutcomeReporter; a write that
                           fails or outlives its bound is retried in the background
                           (:mod:`._delayed`), never dropped

Ledger writes after the RPC never undo or hide what Temporal did: a failure there is logged
and counted as an instrumentation error (:meth:`Call._guard`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import structlog
from opentelemetry.trace import Span
from temporalio.client import AsyncActivityCancelledError

from .._delayed_writes import DelayedWrites, bounded
from .._errors import (
    ActivityAlreadyClosedError,
    CompletionError,
    HandoffAlreadyFinishedError,
    HandshakeError,
    LedgerError,
)
from .._records import CallFailure, CallIntent, FinishedOutcome, HandoffRecord
from .._tokens import token_fingerprint
from .._vocabulary import CloseReason, Component, ErrorType, Operation, Outcome
from ..config import HandshakeConfig
from ..ledger import HeartbeatResult, Ledger
from ..telemetry._logging import handoff_fields
from ..telemetry._metrics import HandshakeMetrics
from ..telemetry._outcome_reporter import OutcomeReporter
from ..telemetry._tracing import HandshakeTracing
from ._rpc import RetryingRpc, RpcCall

_log = structlog.get_logger("handshake_obs.completion")

_T = TypeVar("_T")

#: How often a call held back by another process's call in flight looks at the ledger.
WAIT_POLL_SECONDS: Final = 0.2

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
    #: Refuse the call when its intent cannot be written in time (the completer, the
    #: sidecar, the reaper); a plain handle's call goes ahead, as without handshake-obs.
    refuse_without_ledger: bool = True

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
    delayed: DelayedWrites


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
        #: A mark still being written after its bound (a plain handle's call went ahead).
        self._late_mark: asyncio.Future[str | None] | None = None
        self._bound = parts.config.ledger_call_timeout.total_seconds()

    @property
    def _pending(self) -> HandoffRecord | None:
        """The handoff, when the ledger had it pending as the call began."""
        record = self._subject.record
        return record if record is not None and record.is_pending else None

    async def send(self, rpc: RpcCall, intent: CallIntent | None = None) -> None:
        """Make the RPC, marked in flight on a pending handoff with ``intent`` (what a
        finishing call records if Temporal accepts); a call Temporal did not accept is
        counted, what it tells is recorded, and its error raised."""
        if (record := self._pending) is not None:
            await self._mark(record, intent)
        try:
            await self._parts.rpc.send(self._operation, rpc, self._log)
        except CompletionError as err:
            error = await self._record_failure(err)
            self._parts.metrics.observe_error(self._subject.target, error.error_type)
            if error is not err:
                raise error from err.__cause__
            raise
        except BaseException:
            # Not an answer of Temporal's (a heartbeat's AsyncActivityCancelledError, a
            # cancellation): a heartbeat's mark ends; a finishing call's stays, with its
            # intent, until it lapses (Temporal may have accepted it).
            if intent is None:
                self._end_mark()
            raise

    async def _mark(self, record: HandoffRecord, intent: CallIntent | None) -> None:
        """Write the call's mark and intent, within the bound. Refused (``LedgerError``, no
        RPC) when it cannot be written in time, unless the subject goes ahead anyway."""
        now = self._parts.clock()
        until = now + self._parts.rpc.worst_case_seconds()
        write: asyncio.Future[str | None]
        if (
            intent is not None
            and self._subject.refuse_finished
            and self._operation is not Operation.REAP
        ):
            # One finishing call per handoff across processes: wait for one in flight. (The
            # reaper writes its mark in one statement: it owns the rows it claimed, and a
            # call in flight elsewhere makes its NOT_FOUND leave the handoff pending.)
            first = self._ledger.begin_finishing_call(record.handoff_id, until, intent, now)
            write = asyncio.ensure_future(first)
        else:
            write = asyncio.ensure_future(
                self._ledger.begin_call(record.handoff_id, until, intent=intent)
            )
        try:
            call_id = await bounded(write, self._bound)
            if call_id is None:
                assert intent is not None  # noqa: S101 - only a finishing call is held back
                call_id = await self._after_the_call_in_flight(record, intent)
            self._call_id = call_id
        except TimeoutError:
            problem = f"no answer within {self._bound:g} s"
            self._late_mark = write
        except LedgerError as err:
            problem = str(err)
        except HandoffAlreadyFinishedError:
            with refusals(self._parts.metrics, record.target, self._log):
                raise  # another call finished it since it was looked up: nothing to send
        else:
            return
        self._parts.metrics.observe_instrumentation_error(Component.LEDGER)
        if not self._subject.refuse_without_ledger:
            self._log.error("call intent not written; sending anyway", error=problem)
            return
        # Refused: a mark that lands after all must not outlive this call.
        self._end_mark()
        with refusals(self._parts.metrics, self._subject.target, self._log):
            raise LedgerError(f"call intent not written, nothing sent to Temporal: {problem}")

    async def _after_the_call_in_flight(self, record: HandoffRecord, intent: CallIntent) -> str:
        """Another finishing call of this handoff is in flight (another process's): its
        answer is this call's. Refused as ``already_finished`` once it finished the handoff;
        marked (and sent) once its mark ended or lapsed without an outcome."""
        self._log.info("waiting for the finishing call in flight")
        while True:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            latest = await bounded(
                asyncio.ensure_future(self._ledger.get(record.handoff_id)), self._bound
            )
            if latest is not None and latest.outcome is not None:
                raise HandoffAlreadyFinishedError(latest.handoff_id, latest.outcome.value)
            now = self._parts.clock()
            until = now + self._parts.rpc.worst_case_seconds()
            call_id = await bounded(
                asyncio.ensure_future(
                    self._ledger.begin_finishing_call(record.handoff_id, until, intent, now)
                ),
                self._bound,
            )
            if call_id is not None:
                return call_id

    def _end_mark(self, refused: ErrorType | None = None) -> None:
        """The call ended without an outcome: its mark goes, now or once it is written;
        ``refused``: Temporal did not take it, which goes on the handoff's timeline."""
        record = self._subject.record
        if record is None:
            return
        handoff_id = record.handoff_id
        mark = self._late_mark
        if self._call_id is not None:
            mark = asyncio.get_running_loop().create_future()
            mark.set_result(self._call_id)
        if mark is None:
            return

        failure = (
            CallFailure(self._operation.value, refused.value, self._parts.clock())
            if refused is not None
            else None
        )

        async def end() -> None:
            call_id = await mark
            if call_id is not None:
                await self._ledger.end_call(handoff_id, call_id, failure=failure)

        self._parts.delayed.follow(
            asyncio.ensure_future(end()), end, lambda _: None, what="end call", log=self._log
        )

    async def send_heartbeat(self, rpc: RpcCall) -> bool:
        """Send a heartbeat, as :meth:`send`; whether Temporal answered that the activity
        should stop (its cancellation requested, or it was paused or reset). Such a heartbeat
        was delivered all the same: the caller ends it as delivered."""
        try:
            await self.send(rpc)
        except AsyncActivityCancelledError as err:
            details = err.details
            self._log.info(
                "activity cancellation requested",
                cancel_requested=details.cancel_requested if details else True,
                paused=details.paused if details else False,
                reset=details.reset if details else False,
            )
            return True
        return False

    async def record_outcome(
        self, outcome: Outcome, *, error_type: str | None = None, error_message: str | None = None
    ) -> FinishedOutcome | bool:
        """Temporal accepted the call: record its outcome (for an unknown token, keep it
        until the handoff is recorded) and report it if this call is the one that did.

        Returns what this call finished, else True when the write is delayed (it goes on
        in the background until the ledger takes it), else False (nothing left to record).
        """
        record, token = self._subject.record, self._subject.task_token
        now = self._parts.clock()

        def write() -> Coroutine[object, object, FinishedOutcome | None]:
            if record is not None:
                return self._ledger.finish(
                    record.handoff_id,
                    outcome,
                    now,
                    error_type=error_type,
                    error_message=error_message,
                    ends_call=self._call_id,
                )
            assert token is not None  # noqa: S101 - a call has a record or a token
            return self._ledger.record_early_outcome(
                token, outcome, now, error_type=error_type, error_message=error_message
            )

        if record is None and token is None:
            return False
        first = asyncio.ensure_future(write())
        try:
            finished = await bounded(first, self._bound)
        except (TimeoutError, LedgerError) as err:
            self._parts.metrics.observe_instrumentation_error(Component.LEDGER)
            self._log.error(
                "ledger write failed",
                recording_delayed=True,
                outcome=outcome.value,
                error=str(err) or f"no answer within {self._bound:g} s",
            )
            self._parts.delayed.follow(
                first,
                write,
                lambda done: self._report(done, error_type, delayed=True),
                what=f"record {outcome.value}",
                log=self._log,
            )
            return True
        if finished is None and record is None:
            self._log.info("outcome kept until its handoff is recorded", outcome=outcome.value)
        self._report(finished, error_type, delayed=False)
        return finished if finished is not None else False

    def _report(
        self, finished: FinishedOutcome | None, error_type: str | None, *, delayed: bool
    ) -> None:
        if finished is None:
            return
        self._parts.reporter.report(
            finished,
            "handoff finished",
            log=self._log,
            span=None if delayed else self._span,
            error_type=error_type,
            **({"recording_delayed": True} if delayed else {}),
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
            self._end_mark()
            await self._extend_on_heartbeat(record)
        self._log.debug("heartbeat delivered")

    async def _record_failure(self, error: CompletionError) -> HandshakeError:
        """Temporal did not accept the call. NOT_FOUND means it closed the activity: the
        handoff ends ``already_closed`` (unless another call in flight may have won, or an
        earlier call's intent says what closed it); any other error leaves it pending.

        Returns the error to raise: for a caller that refuses finished handoffs, a NOT_FOUND
        on a handoff another call finished is that call's ``already_finished``.
        """
        record, token = self._subject.record, self._subject.task_token
        if not isinstance(error, ActivityAlreadyClosedError):
            self._end_mark(error.error_type)
            self._log.warning(
                "completion call failed", error_type=error.error_type.value, error=str(error)
            )
            return error
        now = self._parts.clock()
        finished = None
        if (pending := self._pending) is not None:
            finished = await self._guard(
                self._ledger.finish_closed(pending.handoff_id, now, call_id=self._call_id),
                self._report_late_close,
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
            if finished.outcome is not Outcome.ALREADY_CLOSED and self._subject.refuse_finished:
                return self._finished_by_another(finished.record.handoff_id, finished.outcome)
            return error
        self._log.info(event, recorded=False)
        if record is not None and self._subject.refuse_finished:
            latest = await self._guard(self._ledger.get(record.handoff_id))
            if latest is not None and latest.outcome is not None:
                return self._finished_by_another(latest.handoff_id, latest.outcome)
        return error

    def _report_late_close(self, finished: FinishedOutcome | None) -> None:
        """A NOT_FOUND's outcome that the ledger took after the bound: counted all the same."""
        if finished is not None:
            self._parts.reporter.report(
                finished, "activity already closed in temporal", log=self._log, recorded=True
            )

    def _finished_by_another(self, handoff_id: str, outcome: Outcome) -> HandshakeError:
        """Another call (here or in another process) gave the handoff its outcome."""
        self._log.info("handoff finished by another call", outcome=outcome.value)
        return HandoffAlreadyFinishedError(handoff_id, outcome.value)

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

    async def _guard(
        self,
        write: Coroutine[object, object, _T],
        late: Callable[[_T], None] = lambda _: None,
    ) -> _T | None:
        """Run a ledger write around the RPC, within the bound: a ledger failure there is
        logged and counted, never allowed to undo, hide or delay what Temporal did (None:
        the write failed, or goes on in the background, its result handed to ``late``)."""
        task = asyncio.ensure_future(write)
        try:
            return await bounded(task, self._bound)
        except TimeoutError:
            self._parts.delayed.follow(task, None, late, what="write", log=self._log)
            problem = f"no answer within {self._bound:g} s"
        except LedgerError as err:
            problem = str(err)
        self._parts.metrics.observe_instrumentation_error(Component.LEDGER)
        self._log.error("ledger write failed", error=problem)
        return None
