"""One Temporal RPC of the completion path: a timeout, bounded retries, every attempt timed.

The SDK enforces ``rpc_timeout``; a client-side guard a little past it ends an attempt that
ignores it (a bogus but well-formed token has been reported to hang). Only an unavailable
Temporal is retried, with the configured backoff; any other answer is final at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final

import structlog
from temporalio.client import AsyncActivityCancelledError
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from .._errors import CompletionError
from .._vocabulary import Operation
from ..config import HandshakeConfig
from ..telemetry._metrics import HandshakeMetrics
from ..telemetry._tracing import HandshakeTracing
from ._rpc_errors import completion_error, is_retryable, no_answer, sdk_error

#: The Temporal call; it receives the RPC timeout to pass on.
RpcCall = Callable[[timedelta | None], Awaitable[None]]

#: True while an RPC of the completion path runs, so that an instrumented client underneath
#: does not instrument the same call twice.
in_completion_path: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "handshake_obs_in_completion_path", default=False
)

#: Seconds past ``rpc_timeout`` the client-side guard waits before giving an attempt up.
GUARD_SLACK_SECONDS: Final = 5.0


class RetryingRpc:
    """Makes completion-path RPCs with the configured timeout and retries."""

    def __init__(
        self,
        config: HandshakeConfig,
        metrics: HandshakeMetrics,
        tracing: HandshakeTracing,
        *,
        guard_slack: float = GUARD_SLACK_SECONDS,
    ) -> None:
        self._timeout = config.rpc_timeout
        self._policy = config.rpc_retry
        self._metrics = metrics
        self._tracing = tracing
        self._guard_slack = guard_slack

    def worst_case_seconds(self) -> float:
        """How long one call can take, every attempt and backoff included: how long a call
        may be marked in flight."""
        attempts = self._policy.max_attempts
        backoffs = sum(self._policy.backoff(n) for n in range(1, attempts))
        return attempts * (self._timeout.total_seconds() + self._guard_slack) + backoffs

    async def send(
        self, operation: Operation, call: RpcCall, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        """Make the call; raises the :class:`CompletionError` of its last attempt."""
        for attempt in range(1, self._policy.max_attempts + 1):
            error = await self._attempt(operation, call)
            if error is None:
                return
            if not is_retryable(error) or attempt == self._policy.max_attempts:
                raise error
            delay = self._policy.backoff(attempt)
            log.warning(
                "temporal unavailable, retrying", attempt=attempt, delay=delay, error=str(error)
            )
            self._tracing.retrying(attempt, delay)
            await asyncio.sleep(delay)

    async def _attempt(self, operation: Operation, call: RpcCall) -> CompletionError | None:
        """One attempt, timed; returns what went wrong (None: Temporal accepted the call)."""
        started = time.perf_counter()
        token = in_completion_path.set(True)
        try:
            async with asyncio.timeout(self._timeout.total_seconds() + self._guard_slack):
                await call(self._timeout)
        except RPCError as err:
            return completion_error(err)
        except AsyncActivityCancelledError:
            raise  # a delivered heartbeat whose answer is "stop": the path tells its caller
        except TemporalError as err:
            return sdk_error(err)
        except TimeoutError as err:
            return no_answer(self._timeout, err)
        finally:
            in_completion_path.reset(token)
            self._metrics.observe_rpc(operation, time.perf_counter() - started)
        return None
