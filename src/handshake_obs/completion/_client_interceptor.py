"""The client side of the interceptor: completions made through plain async activity handles
go through the instrumented completion path too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import temporalio.client
from temporalio.client import (
    AsyncActivityCancelledError,
    CompleteAsyncActivityInput,
    FailAsyncActivityInput,
    HeartbeatAsyncActivityInput,
    ReportCancellationAsyncActivityInput,
)
from temporalio.service import RPCError, RPCStatusCode

from .._errors import CompletionError
from ._call import Subject
from ._path import CallResult, CompletionPath
from ._rpc import RpcCall, in_completion_path

_Input = TypeVar(
    "_Input",
    CompleteAsyncActivityInput,
    FailAsyncActivityInput,
    HeartbeatAsyncActivityInput,
    ReportCancellationAsyncActivityInput,
)


class ObservedCompletions(temporalio.client.OutboundInterceptor):
    """Routes a plain handle's complete / fail / heartbeat / report-cancellation through
    the completion path; callers keep the SDK's own errors."""

    def __init__(
        self, next: temporalio.client.OutboundInterceptor, completion: CompletionPath
    ) -> None:
        super().__init__(next)
        self._completion = completion

    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        await self._observe(input, self.next.complete_async_activity, self._completion.complete)

    async def fail_async_activity(self, input: FailAsyncActivityInput) -> None:
        error_type = getattr(input.error, "type", None) or type(input.error).__name__

        async def fail(subject: Subject, rpc: RpcCall) -> CallResult:
            return await self._completion.fail(
                subject, rpc, error_type=error_type, message=str(input.error)
            )

        await self._observe(input, self.next.fail_async_activity, fail)

    async def heartbeat_async_activity(self, input: HeartbeatAsyncActivityInput) -> None:
        details = list(input.details)
        progress = details[0] if len(details) == 1 else (details or None)

        async def heartbeat(subject: Subject, rpc: RpcCall) -> CallResult:
            return await self._completion.heartbeat(subject, rpc, progress=progress, sequence=None)

        # The path takes a "stop" answer as a delivered heartbeat; a plain handle's caller
        # gets the SDK's AsyncActivityCancelledError, as without handshake-obs.
        stop: list[AsyncActivityCancelledError] = []

        async def send(sent: HeartbeatAsyncActivityInput) -> None:
            try:
                await self.next.heartbeat_async_activity(sent)
            except AsyncActivityCancelledError as err:
                stop.append(err)
                raise

        await self._observe(input, send, heartbeat)
        if stop:
            raise stop[-1]

    async def report_cancellation_async_activity(
        self, input: ReportCancellationAsyncActivityInput
    ) -> None:
        await self._observe(
            input,
            self.next.report_cancellation_async_activity,
            self._completion.report_cancellation,
        )

    async def _observe(
        self,
        input: _Input,
        send: Callable[[_Input], Awaitable[None]],
        operation: Callable[[Subject, RpcCall], Awaitable[CallResult]],
    ) -> None:
        """Run ``operation`` of the path, its RPC being ``send(input)`` down the chain."""
        if in_completion_path.get():
            # The completer is already instrumenting this very call.
            await send(input)
            return

        async def rpc(timeout: timedelta | None) -> None:
            await send(_with_timeout(input, timeout))

        # The caller's rpc_timeout bounds the whole call, lookup and retries included, as
        # it bounds the SDK's own call.
        limit = input.rpc_timeout.total_seconds() if input.rpc_timeout is not None else None
        try:
            async with asyncio.timeout(limit):
                subject = await self._completion.observed(input.id_or_token)
                await operation(subject, rpc)
        except CompletionError as err:
            # Callers of a plain handle get the SDK's own error, as without handshake-obs.
            cause = err.__cause__
            raise (cause if isinstance(cause, RPCError) else _deadline_exceeded()) from None
        except TimeoutError:
            raise _deadline_exceeded() from None


def _deadline_exceeded() -> RPCError:
    """What the SDK raises when a call outlives its rpc_timeout."""
    return RPCError("Deadline Exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")


def _with_timeout(input: _Input, timeout: timedelta | None) -> _Input:
    """``input`` with the path's RPC timeout unless the caller set a tighter one."""
    if timeout is not None and (input.rpc_timeout is None or input.rpc_timeout > timeout):
        input.rpc_timeout = timeout
    return input
