"""What the tests of both ledgers' record batches share: many writers recording at once,
what each record must have left, and a record made to look like another handoff."""

from __future__ import annotations

import asyncio
import dataclasses

from handshake_obs._records import HandoffRecord
from handshake_obs.ledger import Ledger

from .ledger_inspection import OutcomeCount, count_outcomes


async def record_from_writers(
    ledger: Ledger, records: list[HandoffRecord], *, writers: int = 50
) -> None:
    """``records`` recorded by ``writers`` concurrent tasks, each awaiting its record; every
    one of them new."""
    queue = iter(records)

    async def writer() -> None:
        for record in queue:
            assert (await ledger.record(record)).created

    await asyncio.gather(*(writer() for _ in range(writers)))


async def timeline(ledger: Ledger, record: HandoffRecord) -> list[tuple[str, object]]:
    """``record``'s timeline, as (kind, detail)."""
    return [(e.kind.value, e.detail) for e in await ledger.events(record.handoff_id)]


async def assert_each_recorded_once(ledger: Ledger, records: list[HandoffRecord]) -> None:
    """Each of ``records`` stored as given, with one ``recorded`` entry, and counted pending
    under its target."""
    targets: dict[str, int] = {}
    for record in records:
        assert await ledger.get(record.handoff_id) == record
        assert await timeline(ledger, record) == [
            ("recorded", {"attempt": 1, "target": record.target, "deadline": record.deadline})
        ]
        targets[record.target] = targets.get(record.target, 0) + 1
    assert await count_outcomes(ledger) == [
        OutcomeCount(target, "pending", n) for target, n in sorted(targets.items())
    ]


def as_handoff_of(record: HandoffRecord, other: HandoffRecord) -> HandoffRecord:
    """``record`` with the fields that make ``other`` a different handoff of its shape."""
    return dataclasses.replace(
        record,
        handoff_id=other.handoff_id,
        task_token=other.task_token,
        token_fingerprint=other.token_fingerprint,
        workflow_id=other.workflow_id,
    )
