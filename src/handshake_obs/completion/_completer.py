"""The completer: finish a handoff by handoff id or by raw token, instrumented."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import AsyncActivityHandle, Client
from temporalio.exceptions import ApplicationError

from .._errors import UnknownHandoffError
from .._records import HandoffRecord
from .._vocabulary import Operation
from ..ledger import HeartbeatResult
from ._path import CallResult

if TYPE_CHECKING:
    from .._handshake import Handshake

#: A handoff named by its id (str) or by the attempt's raw task token (bytes).
HandoffRef = str | bytes


class Completer:
    """Completes, fails, heartbeats and cancels handoffs through the instrumented path.

    By handoff id, the token is looked up in the ledger (an unknown id raises
    :class:`UnknownHandoffError`). By raw token, the call is made even when the ledger does
    not know the token yet; its outcome is kept and applied when the handoff is recorded.
    A handoff that already has its outcome raises :class:`HandoffAlreadyFinishedError`
    without a Temporal call.
    """

    def __init__(self, client: Client, handshake: Handshake) -> None:
        self._client = client
        self._completion = handshake._completion

    async def complete(self, handoff: HandoffRef, result: Any = None) -> CallResult:
        """Complete the activity with ``result``."""
        handle, record, token = await self._resolve(handoff)

        async def call(timeout: timedelta | None) -> None:
            await handle.complete(result, rpc_timeout=timeout)

        return await self._completion.run(
            Operation.COMPLETE, call, record=record, task_token=token, refuse_finished=True
        )

    async def fail(
        self,
        handoff: HandoffRef,
        *,
        error_type: str,
        message: str,
        details: Sequence[Any] = (),
        non_retryable: bool = False,
    ) -> CallResult:
        """Fail the activity with an ``ApplicationError`` of ``error_type``.

        The workflow sees ``ActivityError`` whose cause is that ``ApplicationError``; whether
        Temporal retries the activity follows its retry policy unless ``non_retryable``.
        """
        handle, record, token = await self._resolve(handoff)
        error = ApplicationError(message, *details, type=error_type, non_retryable=non_retryable)

        async def call(timeout: timedelta | None) -> None:
            await handle.fail(error, rpc_timeout=timeout)

        return await self._completion.run(
            Operation.FAIL,
            call,
            record=record,
            task_token=token,
            refuse_finished=True,
            error_type=error_type,
            error_message=message,
        )

    async def heartbeat(
        self, handoff: HandoffRef, progress: Any = None, *, sequence: int | None = None
    ) -> HeartbeatResult | None:
        """Report progress. With ``sequence``, a report older than the one kept is ignored
        (and not sent to Temporal); without, it is numbered after the one kept.

        Returns how the ledger kept it (None for a token the ledger does not know).
        """
        handle, record, token = await self._resolve(handoff)

        async def call(timeout: timedelta | None) -> None:
            await handle.heartbeat(progress, rpc_timeout=timeout)

        result = await self._completion.run(
            Operation.HEARTBEAT,
            call,
            record=record,
            task_token=token,
            refuse_finished=True,
            progress=progress,
            sequence=sequence,
        )
        return result.heartbeat

    async def report_cancellation(self, handoff: HandoffRef, *details: Any) -> CallResult:
        """Tell Temporal the activity accepted its cancellation."""
        handle, record, token = await self._resolve(handoff)

        async def call(timeout: timedelta | None) -> None:
            await handle.report_cancellation(*details, rpc_timeout=timeout)

        return await self._completion.run(
            Operation.REPORT_CANCELLATION,
            call,
            record=record,
            task_token=token,
            refuse_finished=True,
        )

    async def extend(self, handoff: HandoffRef, until: datetime | timedelta) -> HandoffRecord:
        """Move the handoff's deadline to ``until`` (an aware datetime, or a duration from
        now). The reaper then waits until then; Temporal's own activity timeout still
        applies, so extending past it only trades a typed failure for a timeout."""
        record = await self._find(handoff)
        if isinstance(until, timedelta):
            deadline = self._completion.now() + until.total_seconds()
        elif until.tzinfo is None:
            raise ValueError("a deadline must be timezone-aware")
        else:
            deadline = until.timestamp()
        return await self._completion.extend_deadline(record, deadline)

    async def _find(self, handoff: HandoffRef) -> HandoffRecord:
        record = (
            await self._completion.ledger.find_by_token(handoff)
            if isinstance(handoff, bytes)
            else await self._completion.ledger.get(handoff)
        )
        if record is None:
            raise UnknownHandoffError(
                handoff if isinstance(handoff, str) else "(token not in the ledger)"
            )
        return record

    async def _resolve(
        self, handoff: HandoffRef
    ) -> tuple[AsyncActivityHandle, HandoffRecord | None, bytes | None]:
        if isinstance(handoff, bytes):
            record = await self._completion.ledger.find_by_token(handoff)
            return self._client.get_async_activity_handle(task_token=handoff), record, handoff
        record = await self._completion.ledger.get(handoff)
        if record is None:
            raise UnknownHandoffError(handoff)
        handle = self._client.get_async_activity_handle(task_token=record.task_token)
        return handle, record, record.task_token
