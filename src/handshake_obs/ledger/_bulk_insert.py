"""Loading many new pending handoffs at once: seeding tests and benchmarks at scale.

:meth:`Ledger.record` runs the record rule for every handoff (the token lock, superseding
older attempts, applying a waiting early outcome), one transaction each: right for live
handoffs, far too slow to seed a million rows. :func:`bulk_insert` writes rows instead, in
batches of one transaction each, through the backend's own insert (SQLite ``executemany``,
PostgreSQL ``COPY``, the in-memory ledger's insert step). It skips the record rule, so it is
for fresh rows only: a token (or handoff id) that is recorded already, or repeated, is
refused, never merged. It is a capability of the three backends, not of the
:class:`Ledger` interface, which stays what the product needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from .._errors import LedgerError
from .._records import HandoffRecord
from ._interface import Ledger
from .memory import MemoryLedger
from .postgres import PostgresLedger
from .sqlite import SqliteLedger

#: Records per transaction: large enough that a commit is rare, small enough that a batch
#: of 106-byte tokens stays a few MB in memory.
DEFAULT_BATCH_SIZE = 20_000

_BACKENDS = (SqliteLedger, PostgresLedger, MemoryLedger)


async def bulk_insert(
    ledger: Ledger, records: Iterable[HandoffRecord], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Store ``records`` (new pending handoffs) in the open ``ledger``; how many were stored.

    ``records`` is read lazily, ``batch_size`` at a time, each batch in one transaction. A
    record that is not a new pending handoff, or whose token or handoff id is recorded
    already (or repeated), stops the load with an error that says how many were stored:
    the batches before it stay, nothing of its batch is stored. None of the record rule's
    checks run (see the module docstring): seed fresh rows only.
    """
    if not isinstance(ledger, _BACKENDS):
        names = ", ".join(cls.__name__ for cls in _BACKENDS)
        raise TypeError(f"bulk insert needs one of {names}, not {type(ledger).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    stored = 0
    pending = iter(records)
    while batch := list(itertools.islice(pending, batch_size)):
        for offset, record in enumerate(batch):
            _check_new_pending(record, stored + offset, stored)
        try:
            await ledger._insert_new_rows(batch)
        except LedgerError as err:
            raise LedgerError(
                f"bulk insert stopped after {stored} records: the batch of records "
                f"{stored} to {stored + len(batch) - 1} was not stored: {err}"
            ) from err
        stored += len(batch)
    return stored


def _check_new_pending(record: object, index: int, stored: int) -> None:
    """Only a new pending handoff may be written without the record rule."""
    if not isinstance(record, HandoffRecord):
        raise TypeError(
            f"bulk insert stopped after {stored} records: record {index} is a "
            f"{type(record).__name__}, not a HandoffRecord"
        )
    if not record.is_pending or record.outcome is not None or record.finished_at is not None:
        raise ValueError(
            f"bulk insert stopped after {stored} records: it loads new pending handoffs "
            f"only, and record {index} ({record!r}) has an outcome"
        )
