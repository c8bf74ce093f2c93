"""A plain async-activity handle on an instrumented client keeps the SDK's contract: the
caller's ``rpc_timeout`` bounds the whole call (lookup, attempts and backoffs together), and
every error is the SDK's own ``RPCError``. Temporal, outside the system under test, is a
stand-in that never answers or is unavailable."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
import temporalio.client
from prometheus_client import CollectorRegistry
from temporalio.client import CompleteAsyncActivityInput
from temporalio.service import RPCError, RPCStatusCode

from handshake_obs import HandshakeConfig, RetryPolicy
from handshake_obs.completion._client_interceptor import ObservedCompletions
from handshake_obs.completion._path import CompletionPath
from handshake_obs.ledger import MemoryLedger
from handshake_obs.telemetry._metrics import HandshakeMetrics

from .completion_kit import new_record

pytestmark = pytest.mark.unit


class StandInTemporal(temporalio.client.OutboundInterceptor):
    """The end of the client's chain: hangs, or answers UNAVAILABLE, every time."""

    def __init__(self, answer: str) -> None:  # no next: this is the end of the chain
        self.answer = answer
        self.calls = 0

    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        self.calls += 1
        if self.answer == "hang":
            await asyncio.sleep(3600)
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


async def observed(answer: str) -> tuple[ObservedCompletions, StandInTemporal, MemoryLedger, bytes]:
    config = HandshakeConfig(
        ledger_url="memory://",
        targets=("agent",),
        rpc_timeout=timedelta(seconds=10),
        rpc_retry=RetryPolicy(max_attempts=4, initial_backoff=timedelta(seconds=0.4)),
    )
    ledger = MemoryLedger()
    await ledger.open()
    record = (await ledger.record(new_record())).record
    metrics = HandshakeMetrics(config, registry=CollectorRegistry())
    temporal = StandInTemporal(answer)
    path = CompletionPath(ledger=ledger, metrics=metrics, config=config)
    return ObservedCompletions(temporal, path), temporal, ledger, record.task_token


def complete_input(token: bytes, rpc_timeout: timedelta | None) -> CompleteAsyncActivityInput:
    fields: dict[str, Any] = {
        "id_or_token": token,
        "result": None,
        "rpc_metadata": {},
        "rpc_timeout": rpc_timeout,
        "data_converter_override": None,
    }
    return CompleteAsyncActivityInput(**fields)


@pytest.mark.parametrize("answer", ["hang", "unavailable"])
async def test_the_callers_rpc_timeout_bounds_the_whole_call_and_the_error_is_rpc_error(
    answer: str,
) -> None:
    interceptor, temporal, ledger, token = await observed(answer)
    began = time.monotonic()

    with pytest.raises(RPCError) as raised:
        await interceptor.complete_async_activity(complete_input(token, timedelta(seconds=0.5)))

    took = time.monotonic() - began
    # Before: per attempt, four attempts (UNAVAILABLE: 2.8 s of backoff; a hang: 60 s).
    assert took < 2.0, took
    assert raised.type is RPCError  # never the builtin TimeoutError
    assert raised.value.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE)
    assert temporal.calls >= 1
    record = await ledger.find_by_token(token)
    assert record is not None
    assert record.is_pending
