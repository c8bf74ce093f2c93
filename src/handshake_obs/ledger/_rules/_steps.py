"""The steps a ledger rule asks its backend to take, and the programs they make up.

A rule is a generator (a :data:`Program`) that yields steps and is sent each step's answer:
it decides, the backend only executes. Each step is one atomic primitive of the store — a
statement in SQL, a dictionary operation in memory — so a rule written once behaves the same
on every backend. The conditions that make the one-outcome invariant atomic (``only while
pending``) belong to the primitive itself: :class:`FinishRow` is a conditional update, never
a read followed by a write.

Locking steps (:class:`LockToken`, :class:`LockHandoff`) say where a backend with concurrent
writers must serialise; a backend with a single writer treats them as no-ops.

:class:`Step` is the closed union of every step, so an executor that ``match``-es on it and
ends in ``assert_never`` is checked for completeness by the type checker.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, cast

from ..._records import CallIntent, HandoffEvent, HandoffRecord
from ..._vocabulary import Outcome
from .._pending_counts import PendingChange

_T = TypeVar("_T")


class Returns(Generic[_T]):
    """Base of a step whose executor answers with a ``_T``."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class EarlyOutcome:
    """An outcome kept for a token whose handoff is not recorded yet."""

    outcome: Outcome
    finished_at: float
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class KeptProgress:
    """The progress sequence a handoff keeps (None: no progress reported yet)."""

    sequence: int | None


# -- locking ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockToken(Returns[None]):
    """Serialise, until the transaction ends, with every other rule on this token digest: a
    handoff record and an early outcome of the same token must not miss each other."""

    digest: bytes


@dataclass(frozen=True, slots=True)
class LockHandoff(Returns[None]):
    """Serialise, until the transaction ends, with every other rule locking this handoff."""

    handoff_id: str


# -- handoffs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertHandoff(Returns[HandoffRecord | None]):
    """Store ``record`` under its token digest; the record as stored, or None (nothing
    stored) when a handoff with this digest exists."""

    record: HandoffRecord
    digest: bytes


@dataclass(frozen=True, slots=True)
class HandoffById(Returns[HandoffRecord | None]):
    """The handoff with this id."""

    handoff_id: str


@dataclass(frozen=True, slots=True)
class HandoffByDigest(Returns[HandoffRecord | None]):
    """The handoff recorded for this token digest."""

    digest: bytes


@dataclass(frozen=True, slots=True)
class HandoffIdByDigest(Returns[str | None]):
    """The id of the handoff recorded for this token digest."""

    digest: bytes


@dataclass(frozen=True, slots=True)
class OlderPendingAttempts(Returns[list[str]]):
    """Ids of the pending handoffs of this activity and run with an attempt below
    ``attempt``, lowest attempt first."""

    namespace: str
    workflow_id: str
    run_id: str
    activity_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class FinishRow(Returns[HandoffRecord | None]):
    """Finish the handoff if, and only if, it is pending; the finished record, or None."""

    handoff_id: str
    outcome: Outcome
    at: float
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class ForgetToken(Returns[None]):
    """Remove the raw task token of a finished handoff: the row keeps its digest, so the
    token is still recognised, but no longer holds the credential."""

    handoff_id: str


@dataclass(frozen=True, slots=True)
class PruneFinished(Returns[int]):
    """Delete up to ``limit`` handoffs finished before ``before`` (oldest first), and the
    early outcomes kept since before then; how many handoffs went."""

    before: float
    limit: int


@dataclass(frozen=True, slots=True)
class ProgressOf(Returns[KeptProgress | None]):
    """The progress sequence the handoff keeps, or None for an unknown handoff. A backend
    with concurrent writers locks the row until the transaction ends."""

    handoff_id: str


@dataclass(frozen=True, slots=True)
class SetProgress(Returns[None]):
    """Keep ``progress`` as the handoff's progress number ``sequence``, reported at ``at``."""

    handoff_id: str
    progress: Any
    sequence: int
    at: float


@dataclass(frozen=True, slots=True)
class SetDeadline(Returns[HandoffRecord | None]):
    """Move the deadline if, and only if, the handoff is pending; the updated record, or
    None."""

    handoff_id: str
    deadline: float


@dataclass(frozen=True, slots=True)
class CountPending(Returns[None]):
    """Add ``changes`` to the pending counts (per target and start-time bucket), in the
    transaction of the rows they count; a backend with concurrent writers changes the count
    rows in key order (see :func:`~.._pending_counts.count_deltas`)."""

    changes: tuple[PendingChange, ...]


@dataclass(frozen=True, slots=True)
class DropEmptyPendingCounts(Returns[None]):
    """Delete the count rows that count nothing (buckets whose handoffs all finished),
    skipping rows a concurrent writer is changing."""


# -- reaping ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimExpired(Returns[list[HandoffRecord]]):
    """Claim, for ``claimant`` until ``until``, up to ``limit`` pending handoffs whose
    deadline is at or before ``now`` and whose claim (if any) ran out before ``now``, oldest
    deadline first; skip rows another claimant is claiming at this moment."""

    now: float
    limit: int
    claimant: str
    until: float


@dataclass(frozen=True, slots=True)
class ReleaseClaim(Returns[None]):
    """Drop the handoff's claim if ``claimant`` holds it."""

    handoff_id: str
    claimant: str


# -- reconciling ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimDueChecks(Returns[list[HandoffRecord]]):
    """Claim, for ``claimant`` until ``until``, up to ``limit`` pending handoffs whose
    reconciler check is due at ``now`` — their ``next_check_at`` has come, or, never checked,
    they started at or before ``first_check_before`` — and whose claim (the reaper's or a
    reconciler's) ran out before ``now``; the most overdue first; skip rows another claimant
    is claiming at this moment."""

    now: float
    first_check_before: float
    limit: int
    claimant: str
    until: float


@dataclass(frozen=True, slots=True)
class ScheduleCheck(Returns[None]):
    """Set when the reconciler checks the handoff next, and drop ``claimant``'s claim on it."""

    handoff_id: str
    next_check_at: float
    claimant: str


# -- calls in flight --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkCall(Returns[None]):
    """Mark call ``call_id`` in flight until ``until`` if, and only if, the handoff is
    pending (waiting, where writers are concurrent, for a finish of it in progress)."""

    handoff_id: str
    call_id: str
    until: float
    #: What the call will record if Temporal accepts it (None: a heartbeat).
    intent: CallIntent | None = None


@dataclass(frozen=True, slots=True)
class EndCall(Returns[None]):
    """Remove the mark of one call."""

    handoff_id: str
    call_id: str


@dataclass(frozen=True, slots=True)
class EndAllCalls(Returns[None]):
    """Remove every mark of the handoff."""

    handoff_id: str


@dataclass(frozen=True, slots=True)
class LiveCallExists(Returns[bool]):
    """Whether a mark of the handoff is still live at ``at`` (its ``until`` is later);
    with ``finishing``, only a mark that carries an intent counts."""

    handoff_id: str
    at: float
    finishing: bool = False


@dataclass(frozen=True, slots=True)
class WrittenIntent(Returns[CallIntent | None]):
    """The intent of the oldest mark of the handoff that has one (lapsed or live)."""

    handoff_id: str


@dataclass(frozen=True, slots=True)
class ProbeWrite(Returns[None]):
    """Write (and commit) one row of the probe table: the ledger can be written."""

    at: float


# -- early outcomes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EarlyOutcomeOf(Returns[EarlyOutcome | None]):
    """The early outcome kept for this token digest."""

    digest: bytes


@dataclass(frozen=True, slots=True)
class KeepEarlyOutcome(Returns[None]):
    """Keep ``early`` for this token digest, replacing any kept before."""

    digest: bytes
    early: EarlyOutcome


@dataclass(frozen=True, slots=True)
class TakeEarlyOutcome(Returns[EarlyOutcome | None]):
    """Remove the early outcome kept for this token digest, and return it."""

    digest: bytes


# -- the timeline ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppendEvent(Returns[None]):
    """Add an entry to the handoff's timeline (in the transaction of the rule it records)."""

    event: HandoffEvent


Step: TypeAlias = (
    LockToken
    | LockHandoff
    | InsertHandoff
    | HandoffById
    | HandoffByDigest
    | HandoffIdByDigest
    | OlderPendingAttempts
    | FinishRow
    | ForgetToken
    | PruneFinished
    | ProgressOf
    | SetProgress
    | SetDeadline
    | CountPending
    | DropEmptyPendingCounts
    | ClaimExpired
    | ReleaseClaim
    | ClaimDueChecks
    | ScheduleCheck
    | MarkCall
    | EndCall
    | EndAllCalls
    | LiveCallExists
    | WrittenIntent
    | ProbeWrite
    | EarlyOutcomeOf
    | KeepEarlyOutcome
    | TakeEarlyOutcome
    | AppendEvent
)

#: A rule: yields steps, is sent each one's answer, returns the rule's result.
Program: TypeAlias = Generator[Step, object, _T]
#: A rule to run: starts its program. Programs depend only on their arguments and the
#: answers they are sent, so a backend that rolls a rule back may start it again.
Rule: TypeAlias = Callable[[], Program[_T]]


def ask(step: Returns[_T]) -> Program[_T]:
    """Take one step (``answer = yield from ask(step)``), typed by what the step returns."""
    answer = yield cast(Step, step)
    return cast(_T, answer)
