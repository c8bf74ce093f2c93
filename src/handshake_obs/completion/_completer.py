"""The completer: finish a handoff by handoff id or by raw token, instrumented."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import AsyncActivityHandle, Client
from temporalio.exceptions import ApplicationError

from .._records import HandoffRecord
from ..ledger import HeartbeatResult
from ._call import Subject
from ._path import CallResult, HandoffRef

if TYPE_CHECKING:
    from .._handshake import Handshake


class Completer:
    """Completes, fails, heartbeats and cancels handoffs through the instrumented path.

    By handoff id, the token is looked up in the ledger (an unknown id raises
    :class:`UnknownHandoffError`). By raw token, the call is made even when the ledger does
    not know the token yet; its outcome is kept and applied when the handoff is recorded.
    A handoff that already has its outcome raises :class:`HandoffAlreadyFinishedError`
    without a Temporal call. Every error raised is a :class:`~handshake_obs.HandshakeError`
    (Temporal's own, when there is one, is its ``__cause__``).
    """

    def __init__(self, client: Client, handshake: Handshake) -> None:
        self._client = client
        self._completion = handshake._completion

    async def complete(self, handoff: HandoffRef, result: Any = None) -> CallResult:
        """Complete the activity with ``result``."""
        subject, handle = await self._resolve(handoff)
        return await self._completion.complete(
            subject, lambda timeout: handle.complete(result, rpc_timeout=timeout)
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
        subject, handle = await self._resolve(handoff)
        error = ApplicationError(message, *details, type=error_type, non_retryable=non_retryable)
        return await self._completion.fail(
            subject,
            lambda timeout: handle.fail(error, rpc_timeout=timeout),
            error_type=error_type,
            message=message,
        )

    async def heartbeat(
        self, handoff: HandoffRef, progress: Any = None, *, sequence: int | None = None
    ) -> HeartbeatResult | None:
        """Report progress. With ``sequence``, a report older than the one kept is ignored
        (and not sent to Temporal); without, it is numbered after the one kept.

        Returns how the ledger kept it. Its ``cancel_requested`` says that Temporal answered
        the heartbeat with "stop": the workflow requested the activity's cancellation (or it
        was paused or reset); report it with :meth:`report_cancellation`. For a token the
        ledger does not know the result is None, unless cancellation was requested: then
        ``HeartbeatResult(accepted=False, sequence=0, cancel_requested=True)`` (nothing kept).
        """
        subject, handle = await self._resolve(handoff)
        result = await self._completion.heartbeat(
            subject,
            lambda timeout: handle.heartbeat(progress, rpc_timeout=timeout),
            progress=progress,
            sequence=sequence,
        )
        if result.heartbeat is None and result.cancel_requested:
            return HeartbeatResult(accepted=False, sequence=0, cancel_requested=True)
        return result.heartbeat

    async def report_cancellation(self, handoff: HandoffRef, *details: Any) -> CallResult:
        """Tell Temporal the activity accepted its cancellation."""
        subject, handle = await self._resolve(handoff)
        return await self._completion.report_cancellation(
            subject, lambda timeout: handle.report_cancellation(*details, rpc_timeout=timeout)
        )

    async def extend(self, handoff: HandoffRef, until: datetime | timedelta) -> HandoffRecord:
        """Move the handoff's deadline to ``until`` (an aware datetime, or a duration from
        now). The reaper then waits until then; Temporal's own activity timeout still
        applies, so extending past it only trades a typed failure for a timeout."""
        return await self._completion.extend(handoff, until)

    async def _resolve(self, handoff: HandoffRef) -> tuple[Subject, AsyncActivityHandle]:
        """What the call is about, and a handle on its activity attempt."""
        token, subject = await self._completion.lookup(handoff)
        return subject, self._client.get_async_activity_handle(task_token=token)
