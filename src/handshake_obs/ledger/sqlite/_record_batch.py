"""The record rule's common case for the records of one group-commit batch, written together.

Almost every record is a first attempt whose token is neither recorded nor awaited by an
early outcome. For it the rule (``programs.record``) looks up the token's early outcome,
inserts the row, appends its ``recorded`` timeline entry and counts it: three statements
and an upsert per record, each a call into ``sqlite3`` with the rule's Python around it, on
the one writer thread whose time bounds how many records the ledger stores per second.

Here the records of a batch (``_group_commit``) that fit are written set-wise, first in the
batch's transaction: one lookup of their tokens among the early outcomes, then their rows,
their timeline entries and their counts, each one ``executemany``. A record whose token an
early outcome awaits, a later attempt (it may supersede older ones) and a second record of
a handoff or a token in the batch run the rule's program after, which decides those cases.
A token recorded already is rare (a record sent again): it is not looked up but found by
the insert, which then stores fewer rows than given. Then, and whenever anything raises (a
handoff id taken), the group commit runs the batch again with every rule as its program,
each in a savepoint: the program decides the case, and one bad record fails only itself.

Writing them first is an order the batch's rules could have had: none of their callers has
heard an answer yet, so they are concurrent, and the writes are the program's own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

from ..._records import HandoffRecord
from ..._tokens import token_digest
from .._interface import RecordResult
from .._pending_counts import SQLITE_SHARDS, PendingChange, count_deltas
from .._rows import RowCodec, as_read_back, event_params
from .._rules import programs
from ._statements import SQL

#: Fewest records a batch writes together: one record's program costs no more.
MIN_TOGETHER: Final = 2


class TokenRecordedError(Exception):
    """A record of the batch has a token that is recorded already: its program decides."""


class RecordBody:
    """The record rule's transaction body for one record: run alone, the rule's program;
    in a batch, possibly written with others (:func:`write_together`, which derives what it
    writes only then: a record alone in its batch pays for nothing more)."""

    __slots__ = ("program", "record")

    def __init__(
        self, record: HandoffRecord, program: Callable[[sqlite3.Connection], RecordResult]
    ) -> None:
        self.record = record
        self.program = program

    def __call__(self, conn: sqlite3.Connection) -> RecordResult:
        return self.program(conn)


#: A record a batch writes together: as the rule stores it, and its token's digest (a
#: tuple: a frozen dataclass per record costs the writer 0.5 µs more).
_Fitting = tuple[HandoffRecord, bytes]


def write_together(
    codec: RowCodec, conn: sqlite3.Connection, bodies: Sequence[Callable[..., Any]]
) -> dict[int, RecordResult]:
    """Write the records of ``bodies`` that fit (see the module docstring) on ``conn``,
    inside the batch's transaction; their results by their place in ``bodies``."""
    chosen = _fitting(bodies)
    if len(chosen) < MIN_TOGETHER:
        return {}
    digests = [digest for _, digest in chosen.values()]
    awaited = {digest for (digest,) in conn.execute(*SQL.awaited_tokens(digests))}
    if awaited:
        chosen = {place: f for place, f in chosen.items() if f[1] not in awaited}
        if not chosen:
            return {}
    stored = [record for record, _ in chosen.values()]
    rows = [codec.params(record, digest) for record, digest in chosen.values()]
    if conn.executemany(SQL.insert, rows).rowcount != len(rows):
        raise TokenRecordedError("a token of the batch is recorded already")
    conn.executemany(SQL.append_event, [event_params(programs.recorded_event(r)) for r in stored])
    counts = count_deltas(map(PendingChange.recorded, stored), SQLITE_SHARDS)
    conn.executemany(SQL.count_pending, counts)
    return {
        place: RecordResult(record=as_read_back(record), created=True)
        for place, (record, _) in chosen.items()
    }


def _fitting(bodies: Sequence[Callable[..., Any]]) -> dict[int, _Fitting]:
    """The records a batch may write together, by place: first attempts, the first of each
    handoff id and token."""
    chosen: dict[int, _Fitting] = {}
    ids: set[str] = set()
    digests: set[bytes] = set()
    for place, body in enumerate(bodies):
        if not isinstance(body, RecordBody) or programs.may_supersede(body.record):
            continue
        record = body.record
        digest = token_digest(record.task_token)
        if record.handoff_id in ids or digest in digests:
            continue
        ids.add(record.handoff_id)
        digests.add(digest)
        chosen[place] = (programs.storable(record), digest)
    return chosen
