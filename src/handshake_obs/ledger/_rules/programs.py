"""The ledger's rules, written once for every backend.

Each public function here is the program of one :class:`~handshake_obs.ledger.Ledger` write
operation (see :mod:`._steps`). The backend runs it inside one transaction, so each rule is
atomic whatever it reads and writes. Operations that are one step (marking and ending a call,
releasing a claim) need no program: :class:`~._rules_ledger.RulesLedger` takes that step.

Two rules carry the others:

* **Finishing** goes through :func:`_finish_pending` only: the handoff moves from pending to
  finished at most once, a finished handoff keeps no in-flight call marks (those of callers
  that died go with it), and no raw task token: a credential is kept only as long as it can
  still be used, while the token's digest stays so a late duplicate is still recognised.
* **Counting** keeps the pending counts (:mod:`.._pending_counts`) with the rows they
  count: each program that stores or finishes handoffs ends with one
  :class:`~._steps.CountPending` of all it changed, so the counts commit exactly when the
  rows do. Coming last, after every other lock the rule takes, the count rows are held
  only until the commit, and never while waiting for anything else.
* **Messages** are cut to :data:`MAX_ERROR_MESSAGE` characters before they are stored.

Each rule that changes a handoff also appends what it did to the handoff's timeline
(:class:`~._steps.AppendEvent`: recorded, each heartbeat, a deadline set, the outcome), in
the same transaction, so the timeline never tells of a change the ledger does not hold.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..._errors import HandoffAlreadyFinishedError, LedgerError, UnknownHandoffError
from ..._records import CallFailure, CallIntent, FinishedOutcome, HandoffEvent, HandoffRecord
from ..._tokens import token_digest
from ..._vocabulary import CloseReason, HandoffEventKind, Outcome
from .._interface import HeartbeatResult, RecordResult
from .._pending_counts import PendingChange
from .._rows import decode_progress, encode_progress
from ._steps import (
    AppendEvent,
    ClaimDueChecks,
    ClaimExpired,
    CountPending,
    DropEmptyPendingCounts,
    EarlyOutcome,
    EarlyOutcomeOf,
    EndAllCalls,
    EndCall,
    FinishRow,
    ForgetToken,
    HandoffByDigest,
    HandoffById,
    HandoffIdByDigest,
    InsertHandoff,
    KeepEarlyOutcome,
    LiveCallExists,
    LockHandoff,
    LockToken,
    MarkCall,
    OlderPendingAttempts,
    Program,
    ProgressOf,
    PruneFinished,
    SetDeadline,
    SetProgress,
    TakeEarlyOutcome,
    WrittenIntent,
    ask,
)

#: Longest error message kept (a stack trace pasted by an external system stays readable).
MAX_ERROR_MESSAGE = 4096
#: Longest progress (as JSON) a timeline entry keeps whole; a longer one is cut, as text.
MAX_EVENT_PROGRESS = 2048


def truncate_message(message: str | None) -> str | None:
    """Error messages are kept to :data:`MAX_ERROR_MESSAGE` characters."""
    if message is None or len(message) <= MAX_ERROR_MESSAGE:
        return message
    return message[: MAX_ERROR_MESSAGE - 1] + "…"


# -- handoffs -----------------------------------------------------------------------------------


def storable(record: HandoffRecord) -> HandoffRecord:
    """``record`` as the record rule stores it (its error message cut to length)."""
    if record.error_message is not None and len(record.error_message) > MAX_ERROR_MESSAGE:
        return dataclasses.replace(record, error_message=truncate_message(record.error_message))
    return record


def recorded_event(stored: HandoffRecord) -> HandoffEvent:
    """The timeline entry of a handoff just stored."""
    return HandoffEvent(
        stored.handoff_id,
        stored.started_at,
        HandoffEventKind.RECORDED,
        {"attempt": stored.attempt, "target": stored.target, "deadline": stored.deadline},
    )


def may_supersede(record: HandoffRecord) -> bool:
    """Whether storing ``record`` may finish older attempts of its activity: attempts count
    from 1, so the first has none before it."""
    return record.attempt > 1


def record(record: HandoffRecord) -> Program[RecordResult]:
    """Store a new pending handoff, unless its token is recorded already (then nothing
    changes); finish older pending attempts of the same activity as superseded; apply the
    early outcome waiting for its token.

    A backend may run the common case apart, as long as it writes what this writes: a new
    handoff that supersedes nothing and has no early outcome waiting is locked, stored
    (:func:`storable`), given its :func:`recorded_event` and counted
    (``PostgresLedger`` does so in one server-side statement, ``SqliteLedger`` set-wise for
    the records of one group commit)."""
    digest = token_digest(record.task_token)
    # Taken before inserting: an early outcome of this token commits first, or waits.
    yield from ask(LockToken(digest))
    stored = yield from ask(InsertHandoff(storable(record), digest))
    if stored is None:
        existing = yield from ask(HandoffByDigest(digest))
        if existing is None:  # pragma: no cover - the row that conflicted cannot vanish
            raise LedgerError("handoff vanished while being recorded")
        return RecordResult(record=existing, created=False)
    yield from ask(AppendEvent(recorded_event(stored)))
    superseded = yield from _supersede_older_attempts(stored)
    reconciled = yield from _apply_early_outcome(stored, digest)
    finished = [*superseded, *([reconciled] if reconciled is not None else [])]
    yield from ask(
        CountPending(
            (
                PendingChange.recorded(stored),
                *(PendingChange.finished(done.record) for done in finished),
            )
        )
    )
    return RecordResult(
        record=reconciled.record if reconciled is not None else stored,
        created=True,
        reconciled=reconciled,
        superseded=superseded,
    )


def _supersede_older_attempts(newer: HandoffRecord) -> Program[tuple[FinishedOutcome, ...]]:
    """A new attempt means Temporal closed the earlier ones of the same activity and run:
    those still pending finish ``already_closed``, as superseded, when the new one started."""
    if not may_supersede(newer):
        return ()  # no query needed
    older = yield from ask(
        OlderPendingAttempts(
            newer.namespace, newer.workflow_id, newer.run_id, newer.activity_id, newer.attempt
        )
    )
    superseded: list[FinishedOutcome] = []
    for handoff_id in older:
        done = yield from _finish_pending(
            handoff_id,
            Outcome.ALREADY_CLOSED,
            newer.started_at,
            CloseReason.SUPERSEDED.value,
            f"superseded by attempt {newer.attempt}",
        )
        if done is not None:
            superseded.append(done)
    return tuple(superseded)


def _apply_early_outcome(stored: HandoffRecord, digest: bytes) -> Program[FinishedOutcome | None]:
    """Finish a just recorded handoff with the outcome kept for its token, if one was: the
    kept row goes, and the outcome is dated no earlier than the handoff's start."""
    early = yield from ask(TakeEarlyOutcome(digest))
    if early is None:
        return None
    return (
        yield from _finish_pending(
            stored.handoff_id,
            early.outcome,
            max(early.finished_at, stored.started_at),
            early.error_type,
            early.error_message,
        )
    )


def _finish_and_count(
    handoff_id: str,
    outcome: Outcome,
    at: float,
    error_type: str | None,
    error_message: str | None,
) -> Program[FinishedOutcome | None]:
    """:func:`_finish_pending`, and the pending counts changed with it: the finish of every
    rule but ``record`` (which counts all it stored and finished at once)."""
    done = yield from _finish_pending(handoff_id, outcome, at, error_type, error_message)
    if done is not None:
        yield from ask(CountPending((PendingChange.finished(done.record),)))
    return done


def _finish_pending(
    handoff_id: str,
    outcome: Outcome,
    at: float,
    error_type: str | None,
    error_message: str | None,
) -> Program[FinishedOutcome | None]:
    """The one way a handoff finishes: only from pending, with every in-flight mark removed
    (a finished handoff needs none; those of callers that died go with it) and its raw
    token forgotten (nothing may use it any more; its digest stays). The caller counts the
    finish (:func:`_finish_and_count`)."""
    finished = yield from ask(
        FinishRow(handoff_id, outcome, at, error_type, truncate_message(error_message))
    )
    if finished is None:
        return None
    yield from ask(EndAllCalls(handoff_id))
    yield from _event(
        handoff_id,
        at,
        HandoffEventKind.FINISHED,
        outcome=outcome.value,
        error_type=finished.error_type,
        error_message=finished.error_message,
    )
    yield from ask(ForgetToken(handoff_id))
    forgotten = dataclasses.replace(finished, task_token=b"")
    return FinishedOutcome(record=forgotten, outcome=outcome, finished_at=at)


# -- the completion path ------------------------------------------------------------------------


def finish(
    handoff_id: str,
    outcome: Outcome,
    at: float,
    *,
    error_type: str | None,
    error_message: str | None,
    ends_call: str | None,
) -> Program[FinishedOutcome | None]:
    """Finish a pending handoff; the call ``ends_call`` ends either way."""
    # Finishing first takes the handoff before its marks, the order every rule locks them in.
    done = yield from _finish_and_count(handoff_id, outcome, at, error_type, error_message)
    if done is None and ends_call is not None:
        yield from ask(EndCall(handoff_id, ends_call))
    return done


def begin_finishing_call(
    handoff_id: str, call_id: str, until: float, intent: CallIntent, at: float
) -> Program[bool]:
    """Mark a finishing call with its intent, unless another finishing call of the handoff
    is live at ``at`` (in this process or another): then nothing is written (False), and
    the caller waits for that call's answer instead of calling Temporal too. A handoff that
    finished meanwhile is refused (:class:`HandoffAlreadyFinishedError`)."""
    # The handoff's lock orders concurrent callers: the second sees the first's mark.
    yield from ask(LockHandoff(handoff_id))
    current = yield from ask(HandoffById(handoff_id))
    if current is not None and current.outcome is not None:
        raise HandoffAlreadyFinishedError(handoff_id, current.outcome.value)
    if (yield from ask(LiveCallExists(handoff_id, at, finishing=True))):
        return False
    yield from ask(MarkCall(handoff_id, call_id, until, intent))
    return True


def finish_closed(
    handoff_id: str, at: float, *, call_id: str | None
) -> Program[FinishedOutcome | None]:
    """A call got NOT_FOUND: it ends, and the handoff finishes ``already_closed`` unless
    another call's mark is still live (that call may be the one Temporal accepted) or an
    earlier call's written intent remains (that call did it: its outcome is recorded)."""
    # The handoff's lock orders concurrent NOT_FOUNDs: the last to look sees no other call.
    yield from ask(LockHandoff(handoff_id))
    if call_id is not None:
        yield from ask(EndCall(handoff_id, call_id))
    if (yield from ask(LiveCallExists(handoff_id, at))):
        return None
    # A call that wrote its intent and then lost its final write (or its process) is what
    # closed the activity: its outcome is recorded, not already_closed.
    intent = yield from ask(WrittenIntent(handoff_id))
    if intent is not None:
        return (
            yield from _finish_and_count(
                handoff_id, intent.outcome, at, intent.error_type, intent.error_message
            )
        )
    return (
        yield from _finish_and_count(
            handoff_id, Outcome.ALREADY_CLOSED, at, CloseReason.NOT_FOUND.value, None
        )
    )


def record_early_outcome(
    task_token: bytes,
    outcome: Outcome,
    at: float,
    *,
    error_type: str | None,
    error_message: str | None,
) -> Program[FinishedOutcome | None]:
    """Finish the token's handoff if it is recorded; else keep the outcome for it.

    A kept ``already_closed`` gives way to a later outcome (a duplicate call's NOT_FOUND may
    overtake the call that won); any other kept outcome stays.
    """
    digest = token_digest(task_token)
    # Taken before looking: a record of this token in flight commits first, or waits.
    yield from ask(LockToken(digest))
    handoff_id = yield from ask(HandoffIdByDigest(digest))
    if handoff_id is not None:
        return (yield from _finish_and_count(handoff_id, outcome, at, error_type, error_message))
    kept = yield from ask(EarlyOutcomeOf(digest))
    if kept is None or kept.outcome is Outcome.ALREADY_CLOSED:
        early = EarlyOutcome(outcome, at, error_type, truncate_message(error_message))
        yield from ask(KeepEarlyOutcome(digest, early))
    return None


def heartbeat(
    handoff_id: str, progress: Any, sequence: int | None, at: float
) -> Program[HeartbeatResult]:
    """Keep ``progress`` unless the handoff keeps progress numbered as high or higher;
    ``sequence`` None numbers the report after the one kept."""
    kept = yield from ask(ProgressOf(handoff_id))
    if kept is None:
        raise UnknownHandoffError(handoff_id)
    new = sequence if sequence is not None else (kept.sequence or 0) + 1
    if kept.sequence is not None and new <= kept.sequence:
        yield from _event(
            handoff_id, at, HandoffEventKind.HEARTBEAT_IGNORED, sequence=new, kept=kept.sequence
        )
        return HeartbeatResult(accepted=False, sequence=kept.sequence)
    yield from ask(SetProgress(handoff_id, progress, new, at))
    yield from _event(
        handoff_id, at, HandoffEventKind.HEARTBEAT, sequence=new, progress=event_progress(progress)
    )
    return HeartbeatResult(accepted=True, sequence=new)


# -- deadlines and reaping ----------------------------------------------------------------------


def extend_deadline(handoff_id: str, deadline: float, *, at: float) -> Program[HandoffRecord]:
    """Move a pending handoff's deadline (at ``at``); an unknown or finished handoff is
    refused."""
    updated = yield from ask(SetDeadline(handoff_id, deadline))
    if updated is not None:
        yield from _event(handoff_id, at, HandoffEventKind.DEADLINE_SET, deadline=deadline)
        return updated
    existing = yield from ask(HandoffById(handoff_id))
    if existing is None:
        raise UnknownHandoffError(handoff_id)
    raise HandoffAlreadyFinishedError(
        handoff_id, existing.outcome.value if existing.outcome else existing.state.value
    )


def event_progress(progress: Any) -> Any:
    """Progress as a timeline entry keeps it: whole up to :data:`MAX_EVENT_PROGRESS`
    characters of JSON, else the start of its JSON text (the row keeps the latest whole)."""
    text = encode_progress(progress)
    if text is None or len(text) <= MAX_EVENT_PROGRESS:
        return decode_progress(text)
    return text[: MAX_EVENT_PROGRESS - 1] + "…"


def end_call(handoff_id: str, call_id: str, failure: CallFailure | None) -> Program[None]:
    """A call ended without an outcome: its mark goes, and a refusal goes on the timeline."""
    yield from ask(EndCall(handoff_id, call_id))
    if failure is not None:
        yield from _event(
            handoff_id,
            failure.at,
            HandoffEventKind.CALL_FAILED,
            operation=failure.operation,
            error_type=failure.error_type,
        )


def _event(handoff_id: str, at: float, kind: HandoffEventKind, **detail: Any) -> Program[None]:
    yield from ask(AppendEvent(HandoffEvent(handoff_id, at, kind, detail)))


def claim_expired(
    now: float, *, limit: int, claimant: str, lease_seconds: float
) -> Program[list[HandoffRecord]]:
    """Claim expired pending handoffs for ``lease_seconds``, oldest deadline first."""
    claimed = yield from ask(ClaimExpired(now, limit, claimant, now + lease_seconds))
    return sorted(claimed, key=lambda r: r.deadline or 0.0)


# -- retention ----------------------------------------------------------------------------------


def prune_finished(before: float, *, limit: int) -> Program[int]:
    """Delete one bounded batch of handoffs finished before ``before`` (and early outcomes
    kept since then); how many handoffs went. Pending handoffs are never touched."""
    if limit < 1:
        raise ValueError("a prune batch must be at least one row")
    pruned = yield from ask(PruneFinished(before, limit))
    # Buckets whose handoffs all finished count nothing: their rows go too.
    yield from ask(DropEmptyPendingCounts())
    return pruned


# -- reconciling with Temporal ------------------------------------------------------------------


def claim_due_checks(
    now: float, *, first_check_before: float, limit: int, claimant: str, lease_seconds: float
) -> Program[list[HandoffRecord]]:
    """Claim pending handoffs whose reconciler check is due, most overdue first, for
    ``lease_seconds`` (the reaper's claims: neither a reaper nor another reconciler takes
    them meanwhile)."""
    return (
        yield from ask(
            ClaimDueChecks(now, first_check_before, limit, claimant, now + lease_seconds)
        )
    )


def finish_reconciled(
    handoff_id: str, at: float, *, reason: CloseReason, detail: str | None
) -> Program[FinishedOutcome | None]:
    """Temporal shows the attempt closed: finish the handoff ``already_closed`` with the
    reason seen, unless a completion call is in flight on it (that call may be the one that
    closed it, and records the true outcome) or it finished already."""
    yield from ask(LockHandoff(handoff_id))
    if (yield from ask(LiveCallExists(handoff_id, at))):
        return None
    return (
        yield from _finish_and_count(handoff_id, Outcome.ALREADY_CLOSED, at, reason.value, detail)
    )
