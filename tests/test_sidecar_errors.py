"""Bad input always gets a clear JSON error and loses nothing: every status code the API
promises, including Temporal and the ledger going down mid-test."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import sql
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from handshake_obs.dev import start_dev_server

from .support.ports import free_port
from .support.postgres import ledger_url, postgres_admin, throwaway_schema
from .support.sidecar import OPERATOR_TOKEN, ExternalReceiver, Sidecar, running_sidecar
from .support.waiting import assert_eventually
from .support.workflows import SidecarCall, SidecarWorkflow

UNKNOWN_ID = "ho_" + "A" * 24


@pytest.fixture
async def sidecar(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> AsyncIterator[Sidecar]:
    async with running_sidecar(
        tmp_path,
        temporal_address,
        targets={"billing": receiver.url},
        extra_env={"HANDSHAKE_MAX_BODY_BYTES": "2048"},
    ) as running:
        yield running


async def handed_off(
    client: Client, sidecar: Sidecar, receiver: ExternalReceiver, task_queue: str
) -> tuple[Any, str]:
    handle = await client.start_workflow(
        SidecarWorkflow.run,
        SidecarCall(
            activity="handshake.http_handoff",
            task_queue=sidecar.task_queue,
            argument={"target": "billing"},
        ),
        id=f"err-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    return handle, (await receiver.receive()).body["handoff_id"]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


async def test_each_bad_input_gets_its_status_code_and_a_clear_json_error(
    sidecar: Sidecar, receiver: ExternalReceiver, temporal_address: str
) -> None:
    client = await Client.connect(temporal_address)
    task_queue = f"wf-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]):
        handle, handoff_id = await handed_off(client, sidecar, receiver, task_queue)
        async with sidecar.client() as http, sidecar.client(None) as anonymous:
            complete = f"/v1/handoffs/{handoff_id}/complete"
            # 400
            json_header = {"content-type": "application/json"}
            not_json = await http.post(complete, content=b"{not json", headers=json_header)
            assert_error(not_json, 400, "malformed_json")
            assert_error(
                await http.post("/v1/handoffs/nope/complete", json={}), 400, "malformed_handoff_id"
            )
            assert_error(
                await http.post("/v1/tokens/complete", json={"task_token": "!!!not base64"}),
                400, "malformed_token",
            )  # fmt: skip
            garbage = base64.b64encode(b"\x01garbage-not-a-task-token").decode()
            assert_error(
                await http.post("/v1/tokens/complete", json={"task_token": garbage}),
                400,
                "invalid_token",
            )
            # 401
            assert_error(await anonymous.post(complete, json={}), 401, "unauthenticated")
            wrong = await anonymous.post(
                complete, json={}, headers={"authorization": "Bearer nope"}
            )
            assert_error(wrong, 401, "unauthenticated")
            assert wrong.headers["www-authenticate"] == "Bearer"
            assert_error(
                await http.post(f"/v1/operator/handoffs/{handoff_id}/fail", json={"reason": "x"}),
                401, "unauthenticated",
            )  # fmt: skip
            # 404
            assert_error(
                await http.post(f"/v1/handoffs/{UNKNOWN_ID}/complete", json={}),
                404,
                "unknown_handoff",
            )
            assert_error(await anonymous.get(f"/v1/handoffs/{UNKNOWN_ID}"), 404, "unknown_handoff")
            # 413, declared and streamed
            big = {"result": "x" * 4096}
            assert_error(await http.post(complete, json=big), 413, "body_too_large")

            async def chunks() -> AsyncIterator[bytes]:
                yield b'{"result": "'
                for _ in range(8):
                    yield b"y" * 512
                yield b'"}'

            streamed = await http.post(
                complete, content=chunks(), headers={"content-type": "application/json"}
            )
            assert_error(streamed, 413, "body_too_large")
            # 422
            assert_error(
                await http.post(f"/v1/handoffs/{handoff_id}/fail", json={"message": "no type"}),
                422, "invalid_request",
            )  # fmt: skip
            assert_error(
                await http.post(
                    f"/v1/handoffs/{handoff_id}/extend",
                    json={"extend_by_seconds": 5, "deadline": "2030-01-01T00:00:00Z"},
                ),
                422, "invalid_request",
            )  # fmt: skip
            assert_error(
                await http.post(complete, json={"result": 1, "extra": 2}), 422, "invalid_request"
            )
            # Nothing was lost: the handoff is still pending and completes now.
            assert (await anonymous.get(f"/v1/handoffs/{handoff_id}")).json()["state"] == "pending"
            assert (await http.post(complete, json={"result": "ok"})).status_code == 200
            # 409
            assert_error(
                await http.post(complete, json={"result": "again"}), 409, "already_finished"
            )
        assert await handle.result() == {"result": "ok"}


@pytest.mark.timeout(300)  # two dev-server starts and a shutdown, on shared cores
async def test_temporal_down_gives_503_with_retry_after_then_the_retry_succeeds(
    tmp_path: Path, receiver: ExternalReceiver
) -> None:
    port, db = free_port(), tmp_path / "temporal.db"

    async def start_server() -> WorkflowEnvironment:
        return await start_dev_server(port=port, database=db)

    server = await start_server()
    address = f"127.0.0.1:{port}"
    client = await Client.connect(address)
    task_queue = f"wf-{uuid.uuid4()}"
    async with running_sidecar(tmp_path, address, targets={"billing": receiver.url}) as sidecar:
        async with Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]):
            handle, handoff_id = await handed_off(client, sidecar, receiver, task_queue)
        await server.shutdown()
        try:
            async with sidecar.client() as http:
                down = await http.post(f"/v1/handoffs/{handoff_id}/complete", json={"result": "x"})
                assert_error(down, 503, "temporal_unavailable")
                assert int(down.headers["retry-after"]) > 0
                ready = await http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["ledger"] == "ok"
                assert (await http.get(f"/v1/handoffs/{handoff_id}")).json()["state"] == "pending"
            server = await start_server()

            async def ready_again() -> None:
                async with sidecar.client(None) as probe:
                    assert (await probe.get("/readyz")).status_code == 200

            await assert_eventually(ready_again, timeout=60, interval=0.5)
            async with Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]):
                async with sidecar.client() as http:
                    done = await http.post(
                        f"/v1/handoffs/{handoff_id}/complete", json={"result": "back"}
                    )
                    assert done.status_code == 200, done.text
                assert await handle.result() == {"result": "back"}
        finally:
            await server.shutdown()


@pytest.mark.postgres
async def test_ledger_down_gives_503_with_retry_after_and_nothing_is_lost(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> None:
    admin = await postgres_admin()
    async with throwaway_schema(admin) as schema:
        client = await Client.connect(temporal_address)
        task_queue = f"wf-{uuid.uuid4()}"
        async with (
            running_sidecar(
                tmp_path,
                temporal_address,
                targets={"billing": receiver.url},
                ledger_url=ledger_url(schema),
            ) as sidecar,
            Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]),
        ):
            handle, handoff_id = await handed_off(client, sidecar, receiver, task_queue)
            hidden = f"{schema}_away"
            await admin.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(schema), sql.Identifier(hidden)
                )
            )
            try:
                async with sidecar.client() as http:
                    down = await http.post(
                        f"/v1/handoffs/{handoff_id}/complete", json={"result": "x"}
                    )
                    assert_error(down, 503, "ledger_unavailable")
                    assert "retry-after" in down.headers
                    assert (await http.get("/readyz")).status_code == 503
            finally:
                await admin.execute(
                    sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                        sql.Identifier(hidden), sql.Identifier(schema)
                    )
                )
            async with sidecar.client() as http:
                done = await http.post(
                    f"/v1/handoffs/{handoff_id}/complete", json={"result": "kept"}
                )
                assert done.status_code == 200, done.text
            assert await handle.result() == {"result": "kept"}
    await admin.close()


async def test_operator_token_fails_a_stuck_handoff_and_inventory_can_be_protected(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> None:
    client = await Client.connect(temporal_address)
    task_queue = f"wf-{uuid.uuid4()}"
    async with (
        running_sidecar(
            tmp_path,
            temporal_address,
            targets={"billing": receiver.url},
            extra_env={"HANDSHAKE_INVENTORY_TOKEN": "inventory-secret"},
        ) as sidecar,
        Worker(client, task_queue=task_queue, workflows=[SidecarWorkflow]),
    ):
        handle, handoff_id = await handed_off(client, sidecar, receiver, task_queue)
        async with sidecar.client(None) as anonymous, sidecar.client("inventory-secret") as reader:
            assert_error(await anonymous.get("/v1/handoffs"), 401, "unauthenticated")
            assert (await anonymous.get("/")).status_code == 401
            assert (await reader.get("/v1/handoffs")).status_code == 200
        async with sidecar.client(OPERATOR_TOKEN) as operator:
            failed = await operator.post(
                f"/v1/operator/handoffs/{handoff_id}/fail", json={"reason": "customer cancelled"}
            )
            assert failed.status_code == 200, failed.text
        result = await handle.result()
        assert result["error_type"] == "HandoffFailedByOperator"
        assert result["message"] == "customer cancelled"
