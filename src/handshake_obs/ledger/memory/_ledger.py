"""The in-memory ledger: the same rules as the durable ledgers, kept in this process.

For tests — handshake-obs's own fast tier, and users' tests that run handoffs without a
database. Nothing survives the process. Several instances given the same
:class:`MemoryTables` share their handoffs, as replicas share a database.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

from ..._errors import LedgerError
from ..._records import HandoffEvent, HandoffRecord, PendingSummary
from ..._tokens import token_digest
from .._interface import FinishedLatency, HandoffQuery, OutcomeTally
from .._pending_counts import PendingChange, bucket_of
from .._rows import summary_from_row
from .._rules import CountPending, InsertHandoff, Rule, run_program
from .._rules_ledger import BucketCounts, RulesLedger
from ._executor import execute
from ._tables import Changes, MemoryTables

_T = TypeVar("_T")


class MemoryLedger(RulesLedger):
    """Ledger in memory; each operation runs whole before the next starts."""

    def __init__(self, tables: MemoryTables | None = None) -> None:
        self._tables = tables if tables is not None else MemoryTables()
        self._open = False

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _require_open(self) -> MemoryTables:
        if not self._open:
            raise LedgerError("the ledger is not open")
        return self._tables

    async def _run(self, rule: Rule[_T]) -> _T:
        tables = self._require_open()
        changes = Changes()
        try:
            return run_program(rule(), functools.partial(execute, tables, changes))
        except BaseException:
            changes.rollback()
            raise

    async def _insert_new_rows(self, records: Sequence[HandoffRecord]) -> None:
        """Insert ``records`` as new handoffs, all or none, without the record rule (see
        ``ledger/_bulk_insert.py``): a token or handoff id recorded already, or repeated in
        ``records``, undoes all of them, as the SQL ledgers' unique indexes do."""
        tables = self._require_open()
        changes = Changes()
        try:
            for record in records:
                _insert_new(tables, changes, record)
        except BaseException:
            changes.rollback()
            raise

    # -- looking up ---------------------------------------------------------------------

    async def get(self, handoff_id: str) -> HandoffRecord | None:
        return self._require_open().handoffs.get(handoff_id)

    async def find_by_token(self, task_token: bytes) -> HandoffRecord | None:
        tables = self._require_open()
        handoff_id = tables.ids_by_digest.get(token_digest(task_token))
        return None if handoff_id is None else tables.handoffs.get(handoff_id)

    async def find_by_activity(
        self, namespace: str | None, workflow_id: str, run_id: str | None, activity_id: str
    ) -> HandoffRecord | None:
        attempts = [
            r
            for r in self._require_open().handoffs.values()
            if r.workflow_id == workflow_id
            and r.activity_id == activity_id
            and (not namespace or r.namespace == namespace)
            and (not run_id or r.run_id == run_id)
        ]
        return max(attempts, key=lambda r: (r.started_at, r.attempt), default=None)

    async def find_standalone(
        self, namespace: str | None, activity_id: str, activity_run_id: str | None
    ) -> HandoffRecord | None:
        attempts = [
            r
            for r in self._require_open().handoffs.values()
            if not r.workflow_id
            and r.activity_id == activity_id
            and (not namespace or r.namespace == namespace)
            and (not activity_run_id or r.activity_run_id == activity_run_id)
        ]
        return max(attempts, key=lambda r: (r.started_at, r.attempt), default=None)

    # -- reading ------------------------------------------------------------------------

    async def pending_summary(
        self, now: float, age_bounds: Sequence[float]
    ) -> list[PendingSummary]:
        by_target: dict[str, list[float]] = {}
        for record in self._require_open().handoffs.values():
            if record.is_pending:
                by_target.setdefault(record.target, []).append(record.started_at)
        rows = [
            (
                target,
                len(started),
                min(started),
                *(sum(1 for s in started if s >= now - bound) for bound in age_bounds),
            )
            for target, started in sorted(by_target.items())
        ]
        return [summary_from_row(row, age_bounds) for row in rows]

    async def _pending_counts_and_recount(self) -> tuple[BucketCounts, BucketCounts]:
        tables = self._require_open()
        return dict(tables.pending_counts), _recount(tables)

    async def _rebuild_pending_counts(self) -> None:
        tables = self._require_open()
        tables.pending_counts.clear()
        tables.pending_counts.update(_recount(tables))

    async def list_handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        def selected(r: HandoffRecord) -> bool:
            return (
                (query.state is None or r.state is query.state)
                and (query.target is None or r.target == query.target)
                and (query.started_before is None or r.started_at <= query.started_before)
                and (query.after is None or (r.started_at, r.handoff_id) > query.after)
                and (query.handoff_id is None or r.handoff_id == query.handoff_id)
                and (
                    query.workflow_id_prefix is None
                    or r.workflow_id.startswith(query.workflow_id_prefix)
                )
            )

        page = sorted(
            filter(selected, self._require_open().handoffs.values()),
            key=lambda r: (r.started_at, r.handoff_id),
        )
        return page[: query.limit]

    async def _events(self, handoff_id: str, limit: int) -> list[HandoffEvent]:
        return list(self._require_open().events.get(handoff_id, ())[:limit])

    async def latencies_since(self, since: float, *, limit: int) -> list[FinishedLatency]:
        finished = sorted(
            (
                r
                for r in self._require_open().handoffs.values()
                if not r.is_pending and r.finished_at is not None and r.finished_at >= since
            ),
            key=lambda r: -(r.finished_at or 0.0),
        )
        return [
            FinishedLatency(r.target, r.outcome.value if r.outcome else "", _took(r))
            for r in finished[:limit]
        ]

    async def outcomes_since(self, since: float) -> list[OutcomeTally]:
        tally = Counter(
            (r.target, r.outcome.value, r.error_type)
            for r in self._require_open().handoffs.values()
            if not r.is_pending
            and r.outcome is not None
            and r.finished_at is not None
            and r.finished_at >= since
        )
        return [
            OutcomeTally(target, outcome, error_type, count)
            for (target, outcome, error_type), count in sorted(
                tally.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
            )
        ]

    async def ping(self) -> None:
        self._require_open()


def _insert_new(tables: MemoryTables, changes: Changes, record: HandoffRecord) -> None:
    if execute(tables, changes, InsertHandoff(record, token_digest(record.task_token))) is None:
        raise LedgerError(
            f"ledger (memory): the token of handoff {record.handoff_id!r} is recorded already"
        )
    execute(tables, changes, CountPending((PendingChange.recorded(record),)))


def _recount(tables: MemoryTables) -> BucketCounts:
    recounted = Counter(
        (r.target, bucket_of(r.started_at)) for r in tables.handoffs.values() if r.is_pending
    )
    return dict(recounted)


def _took(record: HandoffRecord) -> float:
    return (record.finished_at or record.started_at) - record.started_at
