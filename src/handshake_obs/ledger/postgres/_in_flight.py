"""The ledger's operations in flight, so that closing can let them finish first.

A record waiting in its batch (``_record_batches``) holds no connection yet, and one the
batch left to the record rule takes its connection only after the batch answers: closing
the pool at that moment would fail records a caller already handed over. Counting each
operation from its call to its answer lets :meth:`PostgresLedger.close` wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class OperationsInFlight:
    """Counts operations between their start and their answer; waits for none to be left."""

    def __init__(self) -> None:
        self._count = 0
        self._none_left: asyncio.Event | None = None

    def __len__(self) -> int:
        return self._count

    @contextlib.contextmanager
    def one(self) -> Iterator[None]:
        """Counts the operation run inside it."""
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            if self._count == 0 and self._none_left is not None:
                self._none_left.set()
                self._none_left = None

    async def settled(self, timeout_seconds: float) -> bool:
        """Whether, within ``timeout_seconds``, a moment came with no operation in flight
        (operations starting meanwhile are waited for too; several callers may wait)."""
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        while self._count:
            if self._none_left is None:
                self._none_left = asyncio.Event()
            none_left = self._none_left
            try:
                async with asyncio.timeout_at(deadline):
                    await none_left.wait()
            except TimeoutError:
                return self._count == 0
        return True
