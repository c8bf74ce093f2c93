"""The reconciler: close in the ledger the handoffs Temporal closed without handshake-obs.

The ledger learns that a handoff is over when a call goes through handshake-obs or the
reaper reaches its deadline. A completion made elsewhere (the ``temporal`` CLI, another SDK,
a plain client with the raw token), a workflow cancelled, terminated or timed out, an attempt
Temporal timed out: each would leave the handoff counted as waiting until its deadline. Each
pass claims the handoffs whose check is due (the reaper's claims, so replicas never check
one at the same time), asks Temporal within the budget (:mod:`._probe`) unless the attempt's
own Temporal timeout has passed, and either schedules the next check (:mod:`._schedule`) or
finishes the handoff ``already_closed`` with the reason seen. A completion call in flight on
the handoff wins: its outcome is the true one, and the reconciler records none.
"""

from __future__ import annotations

import asyncio
import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from temporalio.client import Client
from temporalio.service import RPCError

from .._errors import LedgerError
from .._periodic import PeriodicTask
from .._records import HandoffRecord
from .._vocabulary import CloseReason
from ..completion._reaper import reaper_identity
from ..telemetry._logging import handoff_fields
from ._budget import CallBudget
from ._probe import TemporalProbe, Verdict
from ._schedule import CheckSchedule, timed_out_at

if TYPE_CHECKING:
    from .._handshake import Handshake

_log = structlog.get_logger("handshake_obs.reconciler")

#: Checks one reconciler runs at once (the budget bounds their rate, this their overlap).
CHECK_CONCURRENCY = 8


class CheckResult(enum.StrEnum):
    """What one check of a handoff did."""

    #: Temporal still has the attempt open: checked again later.
    OPEN = "open"
    #: Closed in the ledger with the reason seen.
    RECONCILED = "reconciled"
    #: Temporal closed it, but a completion call is in flight or another caller finished
    #: it first: nothing recorded here.
    LEFT = "left"
    #: Temporal or the ledger did not answer: checked again next pass.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Check:
    """One check of one handoff."""

    record: HandoffRecord
    result: CheckResult
    reason: CloseReason | None = None
    detail: str | None = None
    #: Whether Temporal was asked (no call is needed once the attempt's own timeout passed).
    asked: bool = True


class Reconciler:
    """Checks pending handoffs against Temporal, within a budget of calls per second."""

    def __init__(
        self, client: Client, handshake: Handshake, *, identity: str | None = None
    ) -> None:
        config = handshake.config
        self._ledger = handshake.ledger
        self._metrics = handshake._metrics
        self._reporter = handshake._reporter
        self._config = config
        self._clock = handshake._clock
        self._schedule = CheckSchedule(config)
        self.identity = identity or reaper_identity()
        self.budget = CallBudget(config.reconcile_calls_per_second)
        self._probe = TemporalProbe(
            client,
            self.budget,
            rpc_timeout=config.rpc_timeout,
            on_call=self._metrics.observe_reconciler_call,
        )
        interval = config.reconcile_interval.total_seconds()
        #: Handoffs one pass claims: what the budget checks in about one interval.
        self.batch_size = max(1, math.ceil(config.reconcile_calls_per_second * interval))
        self._lease = config.reaper_lease.total_seconds()
        self._loop = PeriodicTask(self._pass, interval=interval, name="handshake-reconciler")

    async def reconcile_once(self) -> list[Check]:
        """One pass: claim the handoffs due for a check and check them. Never raises for a
        failed pass."""
        now = self._clock()
        try:
            claimed = await self._ledger.claim_due_checks(
                now,
                first_check_before=now - self._schedule.first_check_seconds,
                limit=self.batch_size,
                claimant=self.identity,
                lease_seconds=self._lease,
            )
        except LedgerError as err:
            self._metrics.observe_reconciler_run(succeeded=False, at=now)
            _log.error("reconciler pass failed: ledger unavailable", error=str(err))
            return []
        gate = asyncio.Semaphore(CHECK_CONCURRENCY)

        async def check(record: HandoffRecord) -> Check:
            async with gate:
                return await self._check(record)

        checks = list(await asyncio.gather(*(check(r) for r in claimed)))
        succeeded = all(c.result is not CheckResult.ERROR for c in checks)
        self._metrics.observe_reconciler_run(succeeded=succeeded, at=self._clock())
        if claimed:
            _log.info(
                "reconciler pass",
                checked=len(checks),
                reconciled=sum(c.result is CheckResult.RECONCILED for c in checks),
                errors=sum(c.result is CheckResult.ERROR for c in checks),
            )
        return checks

    async def reconcile_due(self) -> list[Check]:
        """Passes back to back while each claims a full batch (a backlog), so the budget, not
        the interval, sets the pace; then return every check made."""
        checks: list[Check] = []
        while True:
            found = await self.reconcile_once()
            checks.extend(found)
            if len(found) < self.batch_size:
                return checks

    async def _check(self, record: HandoffRecord) -> Check:
        began = self._clock()
        check = await self._checked(record, began)
        _log.debug(
            "handoff checked",
            checker=self.identity,
            began=began,
            ended=self._clock(),
            result=check.result.value,
            reason=check.reason and check.reason.value,
            asked=check.asked,
            **handoff_fields(record),
        )
        return check

    async def _checked(self, record: HandoffRecord, now: float) -> Check:
        timed_out = timed_out_at(record)
        asked = timed_out is None or now < timed_out
        if not asked:
            verdict = Verdict.closed(
                CloseReason.ACTIVITY_TIMED_OUT, "Temporal's own timeout of the attempt passed"
            )
        else:
            try:
                verdict = await self._probe.check(record)
            except RPCError as err:
                _log.warning("handoff not checked", error=str(err), **handoff_fields(record))
                await self._release(record)
                return Check(record, CheckResult.ERROR)
        try:
            if verdict.open:
                await self._ledger.schedule_check(
                    record.handoff_id,
                    self._schedule.next_check(record, self._clock()),
                    self.identity,
                )
                return Check(record, CheckResult.OPEN, asked=asked)
            return await self._close(record, verdict, asked=asked)
        except LedgerError as err:
            _log.warning("handoff check not recorded", error=str(err), **handoff_fields(record))
            return Check(record, CheckResult.ERROR, asked=asked)

    async def _close(self, record: HandoffRecord, verdict: Verdict, *, asked: bool) -> Check:
        reason = verdict.reason or CloseReason.NOT_FOUND
        now = self._clock()
        finished = await self._ledger.finish_reconciled(
            record.handoff_id, now, reason=reason, detail=verdict.detail
        )
        if finished is None:
            # A completion call is in flight (it records the true outcome), or a caller
            # finished the handoff first; look again soon if it is still pending.
            await self._ledger.schedule_check(
                record.handoff_id, now + self._schedule.first_check_seconds, self.identity
            )
            return Check(record, CheckResult.LEFT, reason, verdict.detail, asked)
        self._metrics.observe_reconciled(record.target, reason)
        self._reporter.report(
            finished,
            "handoff reconciled with Temporal",
            log=_log,
            reason=reason.value,
            detail=verdict.detail,
            asked_temporal=asked,
        )
        return Check(record, CheckResult.RECONCILED, reason, verdict.detail, asked)

    async def _release(self, record: HandoffRecord) -> None:
        try:
            await self._ledger.release_claim(record.handoff_id, self.identity)
        except LedgerError as err:
            _log.warning("claim not released; it expires", error=str(err))

    # -- running in the background ------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`reconcile_due` every ``reconcile_interval`` until :meth:`stop`."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop: the pass in progress is cancelled; its claims expire with their lease."""
        await self._loop.stop()

    async def _pass(self) -> None:
        try:
            await self.reconcile_due()
        except Exception as err:  # noqa: BLE001 - the loop must outlive any one pass
            self._metrics.observe_reconciler_run(succeeded=False, at=self._clock())
            _log.error("reconciler pass crashed", error=repr(err))
