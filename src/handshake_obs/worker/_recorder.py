"""The activity side: turning an activity that gives its token away into a ledger record.

Each handoff gets a span (child of the activity's span) whose W3C trace context is stored
with the record: the completion, in whatever process and however late, continues that trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from opentelemetry import trace
from temporalio import activity

from .._delayed_writes import DelayedWrites, bounded
from .._records import HandoffRecord
from .._tokens import new_handoff_id, token_fingerprint
from .._vocabulary import Component, Outcome
from ..config import HandshakeConfig
from ..ledger import Ledger, RecordResult
from ..telemetry._logging import handoff_fields
from ..telemetry._metrics import HandshakeMetrics
from ..telemetry._outcome_reporter import OutcomeReporter
from ..telemetry._tracing import HandoffSpan, HandshakeTracing, trace_carrier
from ._deadline import derive_deadline

_log = structlog.get_logger("handshake_obs.handoff")


class HandoffRecorder:
    """Records handoffs in the ledger and counts them; one per worker."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        metrics: HandshakeMetrics,
        config: HandshakeConfig,
        tracing: HandshakeTracing | None = None,
        reporter: OutcomeReporter | None = None,
        clock: Callable[[], float] = time.time,
        delayed: DelayedWrites | None = None,
    ) -> None:
        self._ledger = ledger
        self._delayed = delayed if delayed is not None else DelayedWrites(metrics)
        self._metrics = metrics
        self._config = config
        self._tracing = tracing if tracing is not None else HandshakeTracing(config)
        self._reporter = reporter if reporter is not None else OutcomeReporter(metrics)
        self._clock = clock

    @property
    def config(self) -> HandshakeConfig:
        """The configuration this recorder applies."""
        return self._config

    def begin(
        self,
        info: activity.Info,
        *,
        target: str | None = None,
        deadline: datetime | timedelta | None = None,
    ) -> tuple[HandoffRecord, HandoffSpan]:
        """Start the handoff's span (child of the current one) and build its pending record,
        which carries the span's trace context. The caller ends the span."""
        target = target or self._config.target_for_activity(info.activity_type)
        span = self._tracing.start_handoff(target)
        try:
            record = self.new_record(info, target=target, deadline=deadline, span=span)
        except Exception as err:
            span.end(err)
            raise
        span.describe(record)
        return record, span

    def new_record(
        self,
        info: activity.Info,
        *,
        target: str | None = None,
        deadline: datetime | timedelta | None = None,
        span: HandoffSpan | None = None,
    ) -> HandoffRecord:
        """A pending record for the running activity (not stored yet), carrying the trace
        context of ``span`` (default: of the current span)."""
        now = self._clock()
        carrier = span.carrier() if span is not None else trace_carrier(trace.get_current_span())
        target = target or self._config.target_for_activity(info.activity_type)
        return HandoffRecord(
            handoff_id=new_handoff_id(),
            task_token=info.task_token,
            token_fingerprint=token_fingerprint(info.task_token),
            namespace=info.namespace,
            workflow_id=info.workflow_id or "",
            # A standalone activity's own run id keys its attempts as a workflow run's do.
            run_id=info.workflow_run_id or getattr(info, "activity_run_id", None) or "",
            activity_id=info.activity_id,
            activity_type=info.activity_type,
            attempt=info.attempt,
            target=target,
            started_at=now,
            deadline=derive_deadline(
                info,
                self._config,
                explicit=deadline,
                target_deadline=self._config.policy(target).deadline,
                now=now,
            ),
            traceparent=carrier.get("traceparent"),
            tracestate=carrier.get("tracestate"),
            activity_run_id=getattr(info, "activity_run_id", None) or None,
            scheduled_at=_epoch(info.scheduled_time),
            attempt_started_at=_epoch(info.started_time),
            schedule_to_close_timeout=_seconds(info.schedule_to_close_timeout),
            start_to_close_timeout=_seconds(info.start_to_close_timeout),
            heartbeat_timeout=_seconds(info.heartbeat_timeout),
        )

    async def record(self, record: HandoffRecord) -> HandoffRecord:
        """Store ``record`` and count it; raises :class:`LedgerError` if it cannot be stored."""
        result = await self._ledger.record(record)
        self._account(result)
        return result.record

    async def record_after_release(self, info: activity.Info) -> None:
        """Record a handoff whose token has already left (the interceptor-only path).

        Never raises, never waits past ``ledger_call_timeout``, and a cancellation landing
        here (a worker shutting down) is not passed on: the activity has completed
        asynchronously either way, and the caller re-raises the SDK's signal. A record
        that is not done in time goes on in the background.
        """
        task = asyncio.ensure_future(self._record_released(info))
        try:
            await bounded(task, self._config.ledger_call_timeout.total_seconds())
        except TimeoutError:
            self._delayed.follow(task, None, lambda _: None, what="record after release")
        except asyncio.CancelledError:
            self._delayed.follow(task, None, lambda _: None, what="record after release")
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # the cancellation was for the activity, which is done

    async def _record_released(self, info: activity.Info) -> None:
        error: Exception | None = None
        try:
            record, span = self.begin(info)
        except Exception as err:  # noqa: BLE001 - never break the handshake
            self._not_recorded(info, err)
            return
        span.activate()
        try:
            span.completed_async(record)
            await self.record(record)
        except Exception as err:  # noqa: BLE001 - never break the handshake
            error = err
            self._not_recorded(info, err)
        finally:
            span.end(error)

    def _not_recorded(self, info: activity.Info, err: Exception) -> None:
        self._metrics.observe_instrumentation_error(Component.LEDGER)
        _log.error(
            "handoff not recorded",
            error=repr(err),
            workflow_id=info.workflow_id,
            activity_id=info.activity_id,
            token_fingerprint=token_fingerprint(info.task_token),
        )

    async def abort(self, record: HandoffRecord, error: BaseException) -> None:
        """The activity raised after recording: its attempt fails, the handoff is aborted."""
        try:
            finished = await self._ledger.finish(
                record.handoff_id,
                Outcome.ABORTED,
                self._clock(),
                error_type=type(error).__name__,
                error_message=str(error),
            )
        except Exception as err:  # noqa: BLE001 - the activity's own error matters more
            self._metrics.observe_instrumentation_error(Component.LEDGER)
            _log.error("handoff abort not recorded", error=repr(err), **handoff_fields(record))
            return
        if finished is not None:
            self._reporter.report(
                finished, "handoff aborted", log=_log, error_type=type(error).__name__
            )

    def _account(self, result: RecordResult) -> None:
        if not result.created:
            return
        record = result.record
        self._metrics.observe_started(record.target)
        _log.info(
            "handoff recorded",
            deadline=record.deadline,
            activity_type=record.activity_type,
            **handoff_fields(record),
        )
        for finished in result.superseded:
            self._reporter.report(
                finished,
                "handoff superseded by a new attempt",
                log=_log,
                new_attempt=record.attempt,
            )
        if result.reconciled is not None:
            self._reporter.report(
                result.reconciled, "handoff reconciled with an outcome that arrived first", log=_log
            )


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _seconds(timeout: timedelta | None) -> float | None:
    """A Temporal timeout in seconds; zero means "not set" to Temporal."""
    if timeout is None or timeout <= timedelta(0):
        return None
    return timeout.total_seconds()
