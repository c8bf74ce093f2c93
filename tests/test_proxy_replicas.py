"""Two proxies on one PostgreSQL ledger, as behind a load balancer.

Workers poll through either proxy, completers complete through either: each handoff is
recorded once, a completion through the other proxy finds it, and a duplicate completion
racing through both proxies is counted once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from handshake_obs import HandshakeConfig
from handshake_obs.config import AsyncActivity, ProxySettings, TemporalConnection
from handshake_obs.ledger import ledger_from_url
from handshake_obs.proxy import running_proxy

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ledger_inspection import OutcomeCount, count_outcomes
from .support.ports import free_port
from .support.postgres import ledger_url, throwaway_schema
from .support.workflows import HandoffRequest, HandoffWorkflow

pytestmark = pytest.mark.postgres

HANDOFFS = 8


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with throwaway_schema() as name:
        yield name


def started(registry: CollectorRegistry) -> float:
    return (
        registry.get_sample_value("handshake_handoffs_started_total", {"target": "approval"}) or 0
    )


def finished(registry: CollectorRegistry) -> float:
    labels = {"target": "approval", "outcome": "completed"}
    return registry.get_sample_value("handshake_handoffs_finished_total", labels) or 0


async def test_two_proxies_on_one_postgres_ledger_record_each_handoff_once(
    temporal_address: str, schema: str
) -> None:
    config = HandshakeConfig(ledger_url=ledger_url(schema), targets=("approval",))
    settings = [
        ProxySettings(
            listen_address=f"127.0.0.1:{free_port()}",
            async_activities=(AsyncActivity("hand_off_plain", target="approval"),),
        )
        for _ in range(2)
    ]
    registries = [CollectorRegistry(), CollectorRegistry()]
    task_queue = f"replicas-{uuid.uuid4()}"
    async with AsyncExitStack() as stack:
        clients = []
        for setting, registry in zip(settings, registries, strict=True):
            proxy = await stack.enter_async_context(
                running_proxy(
                    config, setting, TemporalConnection(address=temporal_address), registry=registry
                )
            )
            client = await Client.connect(f"127.0.0.1:{proxy.port}")
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=task_queue,
                    workflows=[HandoffWorkflow],
                    activities=ALL_ACTIVITIES,
                )
            )
            clients.append(client)
        handles = [
            await clients[n % 2].start_workflow(
                HandoffWorkflow.run,
                HandoffRequest(activity="hand_off_plain"),
                id=f"replica-{n}-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            for n in range(HANDOFFS)
        ]
        tokens = [(await EXTERNAL.receive(h.id)).task_token for h in handles]
        # The last one: the same completion through both proxies at once.
        *singles, raced = tokens
        for n, token in enumerate(singles):
            await clients[(n + 1) % 2].get_async_activity_handle(task_token=token).complete(n)
        answers = await asyncio.gather(
            *(c.get_async_activity_handle(task_token=raced).complete("raced") for c in clients),
            return_exceptions=True,
        )
        errors = [a for a in answers if isinstance(a, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], RPCError)
        assert errors[0].status == RPCStatusCode.NOT_FOUND
        for handle in handles:
            await handle.result()
        assert sum(map(started, registries)) == HANDOFFS
        assert sum(map(finished, registries)) == HANDOFFS
    ledger = ledger_from_url(config.ledger_url)
    async with ledger:
        assert await count_outcomes(ledger) == [OutcomeCount("approval", "completed", HANDOFFS)]
