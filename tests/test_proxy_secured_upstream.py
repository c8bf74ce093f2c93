"""The proxy's upstream is the standard Temporal connection: TLS, mTLS and an API key.

nginx terminates TLS before the dev server and lets through only the test CA's client
certificate and one API key. The proxy reads the standard ``TEMPORAL_*`` variables; the
Python worker and client behind it dial the proxy in plaintext with no credentials at all,
and their handoff is recorded and completed through it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs.ledger import ledger_from_url

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.proxy import start_proxy_process
from .support.tls_proxy import SecuredTemporal, secured_temporal
from .support.workflows import HandoffRequest, HandoffWorkflow


@pytest.fixture
def secured(tmp_path: Path, temporal_address: str) -> Iterator[SecuredTemporal]:
    with secured_temporal(tmp_path, temporal_address) as proxy:
        yield proxy


async def test_the_proxy_dials_a_secured_temporal_with_the_standard_settings(
    secured: SecuredTemporal, tmp_path: Path
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'proxy-ledger.db'}"
    proxy, port, _ = start_proxy_process(
        name="proxy",
        upstream=secured.address,
        ledger_url=ledger_url,
        async_activities=["hand_off_plain=approval"],
        log_dir=tmp_path,
        env=secured.environment(),
    )
    try:
        client = await Client.connect(f"127.0.0.1:{port}")  # plaintext, no key, no certificate
        task_queue = f"secured-{uuid.uuid4()}"
        async with Worker(
            client, task_queue=task_queue, workflows=[HandoffWorkflow], activities=ALL_ACTIVITIES
        ):
            handle = await client.start_workflow(
                HandoffWorkflow.run,
                HandoffRequest(activity="hand_off_plain"),
                id=f"secured-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            delivery = await EXTERNAL.receive(handle.id, timeout=60)
            await client.get_async_activity_handle(task_token=delivery.task_token).complete("tls")
            assert await handle.result() == {"result": "tls"}
        ledger = ledger_from_url(ledger_url)
        async with ledger:
            record = await ledger.find_by_token(delivery.task_token)
        assert record is not None
        assert record.outcome is not None
        assert record.outcome.value == "completed"
        log = proxy.log_path.read_text()
        assert secured.api_key not in log
        assert not any(line in log for line in secured.pki.private_keys())
    finally:
        proxy.stop()
