"""The ledger: the durable record of every handoff, behind one small interface.

A ledger guarantees the two invariants the rest of handshake-obs counts on:

* **One outcome per handoff.** :meth:`Ledger.finish` moves a handoff from pending to finished
  at most once, atomically; it tells the one caller that did it, and only that caller counts
  the outcome in metrics.
* **Order independence.** An outcome for a token the ledger does not know yet is kept
  (:meth:`Ledger.record_early_outcome`) and applied when the handoff is recorded, so a
  completion that overtakes its handoff record is neither lost nor counted twice.

Timestamps are Unix epoch seconds (floats) given by the caller, so one clock rules a process.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._records import (
    CallFailure,
    CallIntent,
    FinishedOutcome,
    HandoffEvent,
    HandoffRecord,
    PendingSummary,
)
from .._vocabulary import CloseReason, Outcome, State
from ._pending_counts import PendingCountMismatch

#: Timeline entries read for one handoff at most (its page shows the first ones).
MAX_EVENTS_READ = 500


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What recording a handoff did."""

    #: The handoff as now stored (finished already if an early outcome was applied).
    record: HandoffRecord
    #: False when a handoff with the same token was recorded before (nothing changed).
    created: bool
    #: The early outcome applied to this handoff, if one was waiting.
    reconciled: FinishedOutcome | None = None
    #: Earlier attempts of the same activity that were still pending: a new attempt means
    #: Temporal closed them, so they finished as ``already_closed``.
    superseded: Sequence[FinishedOutcome] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """What a progress report did to the record."""

    #: False when the report was older than the progress already kept (ignored).
    accepted: bool
    #: Sequence number of the progress the record keeps now.
    sequence: int
    #: Temporal answered the heartbeat that the activity should stop: its cancellation was
    #: requested (or it was paused or reset). Report it with ``report_cancellation`` (HTTP:
    #: ``POST /v1/handoffs/{id}/cancel``). Set by the completion path, never by the ledger.
    cancel_requested: bool = False


@dataclass(frozen=True, slots=True)
class HandoffQuery:
    """A page of the inventory: filters, and where the previous page ended."""

    state: State | None = None
    target: str | None = None
    #: Only handoffs started at or before this time (an age filter: now - min age).
    started_before: float | None = None
    limit: int = 50
    #: Keyset cursor: the (started_at, handoff_id) of the last handoff of the previous page.
    after: tuple[float, str] | None = None
    #: Only the handoff with this id.
    handoff_id: str | None = None
    #: Only handoffs whose workflow id starts with this (case-sensitive).
    workflow_id_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class FinishedLatency:
    """How long one finished handoff took, start to outcome."""

    target: str
    outcome: str
    seconds: float


@dataclass(frozen=True, slots=True)
class OutcomeTally:
    """Handoffs of one target that finished with one outcome and error type."""

    target: str
    outcome: str
    error_type: str | None
    count: int


class Ledger(abc.ABC):
    """Durable store of handoffs. Implementations: SQLite (embedded), PostgreSQL, and one in
    memory for tests."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create or migrate the schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; safe to call twice."""

    async def __aenter__(self) -> Ledger:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- handoffs -----------------------------------------------------------------------

    @abc.abstractmethod
    async def record(self, record: HandoffRecord) -> RecordResult:
        """Store a new pending handoff; apply a waiting early outcome; supersede older attempts."""

    @abc.abstractmethod
    async def get(self, handoff_id: str) -> HandoffRecord | None:
        """The handoff with this id."""

    @abc.abstractmethod
    async def find_by_token(self, task_token: bytes) -> HandoffRecord | None:
        """The handoff recorded for this task token."""

    @abc.abstractmethod
    async def find_by_activity(
        self, namespace: str | None, workflow_id: str, run_id: str | None, activity_id: str
    ) -> HandoffRecord | None:
        """The newest attempt's handoff for this activity (None: any namespace, newest run)."""

    @abc.abstractmethod
    async def find_standalone(
        self, namespace: str | None, activity_id: str, activity_run_id: str | None
    ) -> HandoffRecord | None:
        """The newest attempt's handoff of a standalone activity (one without a workflow,
        started by ``Client.start_activity``): by its activity id and, if given, run id
        (None namespace: any)."""

    # -- the completion path ------------------------------------------------------------

    @abc.abstractmethod
    async def begin_call(
        self, handoff_id: str, until: float, *, intent: CallIntent | None = None
    ) -> str:
        """Mark a completion call in flight on this handoff until ``until`` at the latest;
        returns the call's id. A finishing call gives its ``intent`` (the outcome it records
        if Temporal accepts), durable before the call goes to Temporal: if the final write
        is lost, a later NOT_FOUND records that outcome rather than ``already_closed``.

        While another call is in flight, a call's NOT_FOUND does not close the handoff: the
        call in flight may be the one Temporal accepted, and it records the true outcome.
        Each call's mark lapses on its own at its ``until``, so a caller that died holds
        nothing back for longer than that.
        """

    @abc.abstractmethod
    async def begin_finishing_call(
        self, handoff_id: str, until: float, intent: CallIntent, at: float
    ) -> str | None:
        """:meth:`begin_call` for a finishing call, unless another finishing call's mark on
        the handoff is live at ``at``: then nothing is written and None is returned (that
        call's answer is this one's; wait for it rather than call Temporal again)."""

    @abc.abstractmethod
    async def end_call(
        self, handoff_id: str, call_id: str, *, failure: CallFailure | None = None
    ) -> None:
        """The call ended without an outcome (an error that leaves the handoff pending);
        ``failure``, when Temporal refused it, goes on the handoff's timeline."""

    @abc.abstractmethod
    async def finish(
        self,
        handoff_id: str,
        outcome: Outcome,
        at: float,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        ends_call: str | None = None,
    ) -> FinishedOutcome | None:
        """Finish a pending handoff; None if it had finished already (then nothing changes).

        ``ends_call`` is the id of the call (from :meth:`begin_call`) this ends.
        """

    @abc.abstractmethod
    async def finish_closed(
        self, handoff_id: str, at: float, *, call_id: str | None = None
    ) -> FinishedOutcome | None:
        """A call got NOT_FOUND: end it (``call_id``), and finish as ``already_closed``
        unless another call's mark is still live (it may have won; its outcome is the true
        one)."""

    @abc.abstractmethod
    async def record_early_outcome(
        self,
        task_token: bytes,
        outcome: Outcome,
        at: float,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> FinishedOutcome | None:
        """An outcome for a token: finishes its handoff if recorded, else keeps it for later.

        A kept ``already_closed`` gives way to a later real outcome of the same token (a
        duplicate call's NOT_FOUND may overtake the call that won); nothing kept is counted
        until the handoff is recorded.
        """

    @abc.abstractmethod
    async def heartbeat(
        self, handoff_id: str, progress: Any, sequence: int | None, at: float
    ) -> HeartbeatResult:
        """Keep ``progress`` unless newer progress is already kept.

        ``sequence`` None means "next": the report is numbered after the one kept.
        """

    # -- deadlines and reaping ----------------------------------------------------------

    @abc.abstractmethod
    async def extend_deadline(
        self, handoff_id: str, deadline: float, *, at: float | None = None
    ) -> HandoffRecord:
        """Move a pending handoff's deadline (earlier or later); returns the updated record.
        ``at`` dates the timeline entry (None: now, by the ledger's clock).

        Raises :class:`UnknownHandoffError` or :class:`HandoffAlreadyFinishedError`.
        """

    @abc.abstractmethod
    async def claim_expired(
        self, now: float, *, limit: int, claimant: str, lease_seconds: float
    ) -> list[HandoffRecord]:
        """Claim up to ``limit`` pending handoffs past their deadline, oldest deadline first.

        A claim lasts ``lease_seconds``; handoffs claimed by another live claimant are
        skipped, and a claim whose lease ran out (its reaper died) can be taken over. Cost is
        proportional to what expired, not to what is pending.
        """

    @abc.abstractmethod
    async def release_claim(self, handoff_id: str, claimant: str) -> None:
        """Give a claim back early (the reaper could not reach Temporal; retry next scan)."""

    # -- retention ----------------------------------------------------------------------

    @abc.abstractmethod
    async def prune_finished(self, before: float, *, limit: int) -> int:
        """Delete up to ``limit`` handoffs finished before ``before``, oldest first (and the
        early outcomes kept since before then), in one short transaction; how many handoffs
        went. A caller prunes in batches, so no write waits long behind it."""

    # -- reconciling with Temporal ------------------------------------------------------

    @abc.abstractmethod
    async def claim_due_checks(
        self,
        now: float,
        *,
        first_check_before: float,
        limit: int,
        claimant: str,
        lease_seconds: float,
    ) -> list[HandoffRecord]:
        """Claim up to ``limit`` pending handoffs whose reconciler check is due, most overdue
        first: those whose next check time has come, and those never checked that started at
        or before ``first_check_before``.

        The claim is the reaper's (same lease, same columns): while it lasts, no reaper and
        no other reconciler takes the handoff, so replicas never check one at the same time.
        """

    @abc.abstractmethod
    async def schedule_check(self, handoff_id: str, next_check_at: float, claimant: str) -> None:
        """The handoff is still open in Temporal: check it again at ``next_check_at``, and
        give ``claimant``'s claim back."""

    @abc.abstractmethod
    async def finish_reconciled(
        self, handoff_id: str, at: float, *, reason: CloseReason, detail: str | None = None
    ) -> FinishedOutcome | None:
        """Temporal shows the attempt closed: finish ``already_closed`` with ``reason`` as the
        error type and ``detail`` as the message; None (nothing changes) if it finished
        already or a completion call is in flight on it (that call records the true
        outcome)."""

    # -- reading ------------------------------------------------------------------------

    @abc.abstractmethod
    async def pending_summary(
        self, now: float, age_bounds: Sequence[float]
    ) -> list[PendingSummary]:
        """Pending count, oldest start and count per age bucket, for each target."""

    @abc.abstractmethod
    async def verify_pending_counts(self, *, repair: bool = True) -> list[PendingCountMismatch]:
        """Recount the pending handoffs (a full scan: for a rare check, never a snapshot)
        and compare the counts the snapshot reads; every mismatch, logged, and with
        ``repair`` the counts rebuilt from the recount."""

    @abc.abstractmethod
    async def list_handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        """One page of handoffs, oldest start first (indexed; never a full scan for
        pending ones)."""

    @abc.abstractmethod
    async def events(self, handoff_id: str, *, limit: int = MAX_EVENTS_READ) -> list[HandoffEvent]:
        """The handoff's timeline, oldest first: what each rule that changed it recorded
        (recorded, every heartbeat, each deadline set, the outcome), up to ``limit``."""

    @abc.abstractmethod
    async def latencies_since(self, since: float, *, limit: int) -> list[FinishedLatency]:
        """Start-to-outcome seconds of handoffs finished at or after ``since``, the most
        recent first, up to ``limit`` (indexed on the finish time)."""

    @abc.abstractmethod
    async def outcomes_since(self, since: float) -> list[OutcomeTally]:
        """Handoffs finished at or after ``since``, by target, outcome and error type."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise :class:`LedgerError` unless the store answers a query on its tables."""

    @abc.abstractmethod
    async def check_writable(self) -> None:
        """Raise :class:`LedgerError` unless a write to the store commits (and, for a file,
        the file is still the one opened)."""
