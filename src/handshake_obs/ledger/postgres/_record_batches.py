"""Records batched into calls of the record function (``_record_function``).

A call per record costs a statement and a commit per record. Here at most ``max_calls``
calls (:data:`MAX_CALLS`) are in flight at a time; a record that arrives while they all are
waits, and the records waiting when a call returns go into the next one together (at most
:data:`MAX_BATCH`). A lone record is called at once, so batching costs latency only when
the calls are busy anyway. Durability is unchanged: no caller hears of its record before
the statement that stored it has committed.

A record the function did not store (its token recorded already, an early outcome waiting,
a second record of one handoff or token in the batch), and every record of a call that
failed, is answered None: its caller runs the rule's program, which decides the case or
meets the failure on its own (one bad record fails only itself). A caller that is cancelled
while its call is in flight may still have its record stored, as with any statement
interrupted on its way back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from ..._records import HandoffRecord
from .._rows import RowCodec
from ._record_function import BatchArguments

#: Most records one call stores: a batch's rows and their locks are not held for long.
MAX_BATCH: Final = 128
#: Calls in flight at most (fewer if the pool is smaller). Few calls make large batches:
#: 50 writers here recorded 0.87 of raw inserts' rate with 2, 0.76 with 4, 0.64 with 8 and
#: 0.34 with 25 (``bench.ledger_records_postgres``); a lone record is called at once anyway.
MAX_CALLS: Final = 2

#: Stores a batch, answering the rows it stored.
Call = Callable[[BatchArguments], Awaitable[list[HandoffRecord]]]

_Waiting = tuple[HandoffRecord, "asyncio.Future[HandoffRecord | None]"]


class RecordBatches:
    """Batches the records that wait for one of ``max_calls`` calls of ``call``."""

    def __init__(self, call: Call, codec: RowCodec, *, max_calls: int) -> None:
        if max_calls < 1:
            raise ValueError("at least one call must be allowed in flight")
        self._call = call
        self._codec = codec
        self._max_calls = max_calls
        self._waiting: deque[_Waiting] = deque()
        self._calls: set[asyncio.Task[None]] = set()

    async def record(self, record: HandoffRecord) -> HandoffRecord | None:
        """``record`` as stored, once committed; None if its program must decide."""
        future: asyncio.Future[HandoffRecord | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        self._start_calls()
        return await future

    def _start_calls(self) -> None:
        while self._waiting and len(self._calls) < self._max_calls:
            batch = BatchArguments(self._codec)
            placed: list[_Waiting] = []
            while self._waiting and len(batch) < MAX_BATCH:
                record, future = waiting = self._waiting.popleft()
                if future.done():  # its caller was cancelled before its call
                    continue
                if batch.add(record):
                    placed.append(waiting)
                else:
                    future.set_result(None)
            if placed:
                task = asyncio.ensure_future(self._store(batch, placed))
                self._calls.add(task)

    async def _store(self, batch: BatchArguments, placed: list[_Waiting]) -> None:
        stored: dict[str, HandoffRecord] = {}
        try:
            stored = {r.handoff_id: r for r in await self._call(batch)}
        except Exception:  # noqa: BLE001, S110 - each record's program meets the failure
            pass
        finally:
            for record, future in placed:
                if not future.done():
                    future.set_result(stored.get(record.handoff_id))
            task = asyncio.current_task()
            if task is not None:
                self._calls.discard(task)
            self._start_calls()
