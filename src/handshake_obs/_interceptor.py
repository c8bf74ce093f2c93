"""One interceptor for both sides of the handshake.

Given to ``Client.connect(interceptors=[...])`` it instruments the client (completions made
through plain ``AsyncActivityHandle`` calls) and, because it is also a worker interceptor,
every ``Worker`` built on that client: activities that call ``raise_complete_async()`` are
recorded without code changes. Activities that return or raise normally pass straight
through: no record, no metric, no ledger access.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import temporalio.client
import temporalio.worker
from temporalio import activity
from temporalio.client import (
    CompleteAsyncActivityInput,
    FailAsyncActivityInput,
    HeartbeatAsyncActivityInput,
    ReportCancellationAsyncActivityInput,
)
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from ._complete_async import is_complete_async
from ._completion import CompletionPath, RpcCall, in_completion_path
from ._errors import CompletionError, LedgerError
from ._handoff import ActivityScope, current_scope
from ._model import Operation
from ._recorder import HandoffRecorder


class HandshakeInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Records handoffs on workers and observes async completions on clients."""

    def __init__(self, *, recorder: HandoffRecorder, completion: CompletionPath) -> None:
        self._recorder = recorder
        self._completion = completion

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next, self._completion)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next, self._recorder)


class _ActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, recorder: HandoffRecorder) -> None:
        super().__init__(next)
        self._recorder = recorder

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        scope = ActivityScope(self._recorder)
        reset = current_scope.set(scope)
        try:
            return await super().execute_activity(input)
        except BaseException as err:
            if is_complete_async(err) and scope.recorded is None:
                await self._recorder.record_after_release(activity.info())
            raise
        finally:
            current_scope.reset(reset)


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    def __init__(
        self, next: temporalio.client.OutboundInterceptor, completion: CompletionPath
    ) -> None:
        super().__init__(next)
        self._completion = completion

    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(_ClientOutbound, self).complete_async_activity(
                _with_timeout(input, timeout)
            )

        await self._observe(Operation.COMPLETE, input, call)

    async def fail_async_activity(self, input: FailAsyncActivityInput) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(_ClientOutbound, self).fail_async_activity(_with_timeout(input, timeout))

        error_type = getattr(input.error, "type", None) or type(input.error).__name__
        await self._observe(
            Operation.FAIL, input, call, error_type=error_type, error_message=str(input.error)
        )

    async def heartbeat_async_activity(self, input: HeartbeatAsyncActivityInput) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(_ClientOutbound, self).heartbeat_async_activity(
                _with_timeout(input, timeout)
            )

        details = list(input.details)
        progress = details[0] if len(details) == 1 else (details or None)
        await self._observe(Operation.HEARTBEAT, input, call, progress=progress)

    async def report_cancellation_async_activity(
        self, input: ReportCancellationAsyncActivityInput
    ) -> None:
        async def call(timeout: timedelta | None) -> None:
            await super(_ClientOutbound, self).report_cancellation_async_activity(
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
