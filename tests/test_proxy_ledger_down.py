"""Record before release, when the ledger cannot record: the token is not released.

The proxy's PostgreSQL ledger loses its table (renamed away, a real fault the database
reports); a poll response for an async activity then cannot be recorded, so the proxy fails
the attempt back to Temporal as the retryable ``HandoffNotRecorded`` and gives the worker an
empty poll. Once the table is back, the retry is recorded and handed over: the external
system only ever sees an attempt the ledger has.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from psycopg import sql
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import HandshakeConfig
from handshake_obs._vocabulary import NOT_RECORDED_TYPE
from handshake_obs.config import AsyncActivity, ProxySettings, TemporalConnection
from handshake_obs.proxy import running_proxy

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ports import free_port
from .support.postgres import ledger_url, postgres_admin, throwaway_schema
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow

pytestmark = pytest.mark.postgres


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with throwaway_schema() as name:
        yield name


async def test_a_task_the_ledger_cannot_record_is_failed_back_not_released(
    temporal_address: str, schema: str
) -> None:
    config = HandshakeConfig(ledger_url=ledger_url(schema), targets=("approval",))
    settings = ProxySettings(
        listen_address=f"127.0.0.1:{free_port()}",
        async_activities=(AsyncActivity("hand_off_plain", target="approval"),),
    )
    registry = CollectorRegistry()
    admin = await postgres_admin()
    table, away = sql.Identifier(schema, "handoffs"), sql.Identifier("handoffs_away")
    async with running_proxy(
        config, settings, TemporalConnection(address=temporal_address), registry=registry
    ) as proxy:
        client = await Client.connect(f"127.0.0.1:{proxy.port}")
        task_queue = f"ledger-down-{uuid.uuid4()}"
        await admin.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(table, away))
        try:
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=ALL_ACTIVITIES,
            ):
                handle = await client.start_workflow(
                    HandoffWorkflow.run,
                    HandoffRequest(activity="hand_off_plain", max_attempts=20),
                    id=f"ledger-down-{uuid.uuid4()}",
                    task_queue=task_queue,
                )

                async def failed_back() -> None:
                    description = await handle.describe()
                    pending_activities = description.raw_description.pending_activities
                    assert len(pending_activities) == 1
                    pending = pending_activities[0]
                    failure = pending.last_failure.application_failure_info
                    assert failure.type == NOT_RECORDED_TYPE

                await assert_eventually(failed_back, timeout=30, interval=0.2)
                errors = registry.get_sample_value(
                    "handshake_instrumentation_errors_total", {"component": "ledger"}
                )
                assert errors is not None
                assert errors >= 1
                back = sql.Identifier(schema, "handoffs_away")
                await admin.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(back, sql.Identifier("handoffs"))
                )
                delivery = await EXTERNAL.receive(handle.id, timeout=60)
                assert delivery.attempt >= 2  # the first attempt never left the proxy
                record = await proxy.ledger.find_by_token(delivery.task_token)
                assert record is not None
                assert record.attempt == delivery.attempt
                await client.get_async_activity_handle(task_token=delivery.task_token).complete(
                    "ok"
                )
                assert await handle.result() == {"result": "ok"}
        finally:
            await admin.execute(
                sql.SQL("ALTER TABLE IF EXISTS {} RENAME TO {}").format(
                    sql.Identifier(schema, "handoffs_away"), sql.Identifier("handoffs")
                )
            )
            await admin.close()
