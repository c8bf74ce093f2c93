"""The activity side: turning an activity that gives its token away into a ledger record."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from opentelemetry import propagate
from temporalio import activity

from ._config import HandshakeConfig
from ._deadline import derive_deadline
from ._logging import handoff_fields
from ._metrics import HandshakeMetrics
from ._model import HandoffRecord, Outcome
from ._tokens import new_handoff_id, token_fingerprint
from .ledger import Ledger, RecordResult

_log = structlog.get_logger("handshake_obs.handoff")


class HandoffRecorder:
    """Records handoffs in the ledger and counts them; one per worker."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        metrics: HandshakeMetrics,
        config: HandshakeConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._config = config
        self._clock = clock

    @property
    def config(self) -> HandshakeConfig:
        """The configuration this recorder applies."""
        return self._config

    def new_record(
        self,
        info: activity.Info,
        *,
        target: str | None = None,
        deadline: datetime | timedelta | None = None,
    ) -> HandoffRecord:
        """A pending record for the running activity (not stored yet)."""
        now = self._clock()
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        target = target or self._config.target_for_activity(info.activity_type)
        return HandoffRecord(
            handoff_id=new_handoff_id(),
            task_token=info.task_token,
            token_fingerprint=token_fingerprint(info.task_token),
            namespace=info.namespace,
            workflow_id=info.workflow_id or "",
            run_id=info.workflow_run_id or "",
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
        )

    async def record(self, record: HandoffRecord) -> HandoffRecord:
        """Store ``record`` and count it; raises :class:`LedgerError` if it cannot be stored."""
        result = await self._ledger.record(record)
        self._account(result)
        return result.record

    async def record_after_release(self, info: activity.Info) -> None:
        """Record a handoff whose token has already left (the interceptor-only path).

        Never raises: the activity has completed asynchronously either way.
        """
        try:
            await self.record(self.new_record(info))
        except Exception as err:  # noqa: BLE001 - never break the handshake
            self._metrics.observe_instrumentation_error("ledger")
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
            self._metrics.observe_instrumentation_error("ledger")
            _log.error("handoff abort not recorded", error=repr(err), **handoff_fields(record))
            return
        if finished is not None:
            self._metrics.observe_finished(finished)
            _log.info("handoff aborted", error_type=type(error).__name__, **handoff_fields(record))

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
            self._metrics.observe_finished(finished)
            _log.info(
                "handoff superseded by a new attempt",
                new_attempt=record.attempt,
                **handoff_fields(finished.record),
            )
        if result.reconciled is not None:
            self._metrics.observe_finished(result.reconciled)
            _log.info(
                "handoff reconciled with an outcome that arrived first",
                outcome=result.reconciled.outcome.value,
                **handoff_fields(record),
            )
