"""Outcomes are durable before they are reported: real ledger faults around a real Temporal.

On both durable backends the fault is real (immutable SQLite files; a PostgreSQL role that
lost its write privileges) and made at the worst moments: before a completion's intent is
written (the call is refused, Temporal never hears of it), and after the intent was written
but before the outcome is (Temporal accepted; the outcome is recorded once the ledger is
writable, in the background or, after the process died, from the intent).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import temporalio.client
from prometheus_client import CollectorRegistry
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, CompleteAsyncActivityInput, WorkflowHandle
from temporalio.worker import Worker

from handshake_obs import HandshakeConfig, LedgerError, Outcome, RetryPolicy, State
from handshake_obs._handshake import Handshake

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ledger_faults import FaultyStore, LedgerFault, postgres_store, sqlite_store
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def finished(registry: CollectorRegistry, outcome: Outcome) -> float:
    return sample(
        registry, "handshake_handoffs_finished_total", target="agent", outcome=outcome.value
    )


class _BeforeTheCompletion(temporalio.client.Interceptor):
    """Runs ``action`` as a completion leaves for Temporal: after handshake-obs wrote its
    intent, before Temporal accepts (the test's way of timing a real fault)."""

    def __init__(self, action: Callable[[], Any]) -> None:
        self.action = action

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _BeforeTheCompletionOutbound(next, self)


class _BeforeTheCompletionOutbound(temporalio.client.OutboundInterceptor):
    def __init__(
        self, next: temporalio.client.OutboundInterceptor, owner: _BeforeTheCompletion
    ) -> None:
        super().__init__(next)
        self._owner = owner

    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        await self._owner.action()
        await super().complete_async_activity(input)


@dataclass
class Run:
    """A handshake on a faulty store, with a worker running the test activities."""

    handshake: Handshake
    client: Client
    registry: CollectorRegistry
    fault: LedgerFault
    config: HandshakeConfig
    temporal_address: str

    async def hand_off(self, **extra: Any) -> tuple[WorkflowHandle[Any, Any], str]:
        handle = await self.client.start_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity="hand_off_explicit", target="agent", extra=extra),
            id=f"wf-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )
        delivery = await EXTERNAL.receive(handle.id)
        return handle, delivery.explicit.handoff_id

    task_queue: str = ""


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FaultyStore]:
    opened = sqlite_store(tmp_path) if request.param == "sqlite" else postgres_store()
    async with opened as faulty:
        yield faulty


@pytest.fixture
async def run(store: FaultyStore, temporal_address: str) -> AsyncIterator[Run]:
    config = HandshakeConfig(
        ledger_url=store.url,
        targets=("agent",),
        # One attempt of 2 s: a call's mark lapses 7 s after it began.
        rpc_timeout=timedelta(seconds=2),
        rpc_retry=RetryPolicy(max_attempts=1),
        ledger_call_timeout=timedelta(seconds=1),
    )
    registry = CollectorRegistry()
    async with Handshake(config, registry=registry) as handshake:
        client = await Client.connect(temporal_address, interceptors=[handshake.interceptor])
        task_queue = f"tq-{uuid.uuid4()}"
        async with Worker(
            client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
        ):
            yield Run(
                handshake, client, registry, store.fault, config, temporal_address, task_queue
            )
        await store.fault.stop()  # the handshake closes on a writable ledger


async def assert_still_open(handle: WorkflowHandle[Any, Any]) -> None:
    """Temporal never heard of a completion: the activity's first attempt is still open."""
    description = await handle.describe()
    pending = list(description.raw_description.pending_activities)
    assert len(pending) == 1
    assert pending[0].attempt == 1
    assert pending[0].state != PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED


async def test_an_intent_that_cannot_be_written_refuses_the_call_before_temporal(
    run: Run,
) -> None:
    handle, handoff_id = await run.hand_off()
    completer = run.handshake.completer(run.client)

    await run.fault.start()
    with pytest.raises(LedgerError, match="nothing sent to Temporal"):
        await completer.complete(handoff_id, "too early")
    await assert_still_open(handle)
    assert (
        sample(
            run.registry, "handshake_completion_rpc_duration_seconds_count", operation="complete"
        )
        == 0
    )
    assert (
        sample(
            run.registry,
            "handshake_completion_errors_total",
            target="agent",
            error_type="ledger_unavailable",
        )
        == 1
    )

    await run.fault.stop()
    result = await completer.complete(handoff_id, "in time")
    assert result.outcome is Outcome.COMPLETED
    assert not result.recording_delayed
    assert await handle.result() == {"result": "in time"}
    record = await run.handshake.ledger.get(handoff_id)
    assert record is not None
    assert record.outcome is Outcome.COMPLETED
    assert finished(run.registry, Outcome.COMPLETED) == 1


async def test_an_accepted_outcome_the_ledger_cannot_take_is_recorded_once_it_can(
    run: Run,
) -> None:
    handle, handoff_id = await run.hand_off()
    faulty = await Client.connect(
        run.temporal_address,
        interceptors=[run.handshake.interceptor, _BeforeTheCompletion(run.fault.start)],
    )

    result = await run.handshake.completer(faulty).complete(handoff_id, "done")

    # Temporal has it; the caller is told what happened and that recording is delayed.
    assert result.outcome is Outcome.COMPLETED
    assert result.recording_delayed
    assert await handle.result() == {"result": "done"}
    record = await run.handshake.ledger.get(handoff_id)
    assert record is not None
    assert record.state is State.PENDING
    assert finished(run.registry, Outcome.COMPLETED) == 0

    await run.fault.stop()

    async def recorded() -> None:
        record = await run.handshake.ledger.get(handoff_id)
        assert record is not None
        assert record.outcome is Outcome.COMPLETED

    await assert_eventually(recorded, timeout=30)
    assert finished(run.registry, Outcome.COMPLETED) == 1
    assert finished(run.registry, Outcome.ALREADY_CLOSED) == 0


async def test_after_a_restart_the_written_intent_is_what_gets_recorded(run: Run) -> None:
    """The process that completed died before its outcome was written: the reaper of the
    next one gets NOT_FOUND, and records the intent's outcome, not already_closed."""
    handle, handoff_id = await run.hand_off(deadline_seconds=2)
    died = Handshake(run.config, registry=CollectorRegistry())
    await died.start()
    faulty = await Client.connect(
        run.temporal_address,
        interceptors=[died.interceptor, _BeforeTheCompletion(run.fault.start)],
    )
    result = await died.completer(faulty).complete(handoff_id, "done")
    assert result.recording_delayed
    assert await handle.result() == {"result": "done"}
    # The process dies: the writes it still owed are gone with it.
    assert await died._delayed.drain(0.1) == 1
    await died.stop()
    await run.fault.stop()

    async def reaped() -> None:
        await run.handshake.reaper(run.client).reap_once()
        record = await run.handshake.ledger.get(handoff_id)
        assert record is not None
        assert record.outcome is Outcome.COMPLETED

    await assert_eventually(reaped, timeout=30, interval=0.5)
    assert finished(run.registry, Outcome.COMPLETED) == 1
    assert finished(run.registry, Outcome.ALREADY_CLOSED) == 0
    assert finished(run.registry, Outcome.REAPED) == 0
