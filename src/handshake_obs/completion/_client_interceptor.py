"""The client side of the interceptor: completions made through plain async activity handles
go through the instrumented completion path too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import temporalio.client
from temporalio.client import (
    CompleteAsyncActivityInput,
    FailAsyncActivityInput,
    HeartbeatAsyncActivityInput,
    ReportCancellationAsyncActivityInput,
)

from .._errors import CompletionError, LedgerError
from .._vocabulary import Operation
from ._path import CompletionPath, RpcCall, in_completion_path


class ObservedCompletions(temporalio.client.OutboundInterceptor):
    """Routes a plain handle's complete / fail / heartbeat / report-cancellation through
    the completion path; callers keep the SDK's own errors."""

    def __init__(
        self, next: temporalio.client.OutboundInterceptor, completion: CompletionPath
    ) -> None:
        super().__init__(next)
        self._completion = completion

    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(ObservedCompletions, self).complete_async_activity(
                _with_timeout(input, timeout)
            )

        await self._observe(Operation.COMPLETE, input, call)

    async def fail_async_activity(self, input: FailAsyncActivityInput) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(ObservedCompletions, self).fail_async_activity(
                _with_timeout(input, timeout)
            )

        error_type = getattr(input.error, "type", None) or type(input.error).__name__
        await self._observe(
            Operation.FAIL, input, call, error_type=error_type, error_message=str(input.error)
        )

    async def heartbeat_async_activity(self, input: HeartbeatAsyncActivityInput) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(ObservedCompletions, self).heartbeat_async_activity(
                _with_timeout(input, timeout)
            )

        details = list(input.details)
        progress = details[0] if len(details) == 1 else (details or None)
        await self._observe(Operation.HEARTBEAT, input, call, progress=progress)

    async def report_cancellation_async_activity(
        self, input: ReportCancellationAsyncActivityInput
    ) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(ObservedCompletions, self).report_cancellation_async_activity(
                _with_timeout(input, timeout)
            )

        await self._observe(Operation.REPORT_CANCELLATION, input, call)

    async def _observe(
        self,
        operation: Operation,
        input: CompleteAsyncActivityInput
        | FailAsyncActivityInput
        | HeartbeatAsyncActivityInput
        | ReportCancellationAsyncActivityInput,
        call: RpcCall,
        **details: Any,
    ) -> None:
        if in_completion_path.get():
            # The completer is already instrumenting this very call.
            await call(input.rpc_timeout)
            return
        try:
            record = await self._completion.find(input.id_or_token, namespace=None)
        except LedgerError:
            record = None  # observe what we can; the call itself must go through
        token = input.id_or_token if isinstance(input.id_or_token, bytes) else None
        try:
            await self._completion.run(
                operation,
                call,
                record=record,
                task_token=token,
                refuse_finished=False,
                **details,
            )
        except CompletionError as err:
            # Callers of a plain handle get the SDK's own error, as without handshake-obs.
            raise (err.__cause__ or err) from None


def _with_timeout(input: Any, timeout: timedelta | None) -> Any:
    """``input`` with the path's RPC timeout unless the caller set a tighter one."""
    if timeout is not None and (input.rpc_timeout is None or input.rpc_timeout > timeout):
        input.rpc_timeout = timeout
    return input
