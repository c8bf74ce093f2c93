"""A real sidecar process against hostile clients and careless configuration: 100 stalled
uploads are closed within the body timeout (unauthenticated ones at once, before their body is
read) while ``/healthz`` keeps answering quickly; bound to a non-loopback address without
tokens, ``serve`` refuses to start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .support.ports import free_port
from .support.sidecar import COMPLETION_TOKEN, PROJECT_ROOT, running_sidecar

STALLED = 100
BODY_TIMEOUT_SECONDS = 2.0
#: Generous: two cores shared with other work.
SLACK_SECONDS = 8.0
HANDOFF_PATH = "/v1/handoffs/ho_" + "A" * 24 + "/complete"


async def stall(port: int, *, authorized: bool) -> tuple[bytes, float]:
    """Send headers and part of a body, then nothing: what came back, and when it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    auth = f"Authorization: Bearer {COMPLETION_TOKEN}\r\n" if authorized else ""
    writer.write(
        f"POST {HANDOFF_PATH} HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\n"
        f'Content-Length: 1000\r\n{auth}\r\n{{"result": '.encode()
    )
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(-1), BODY_TIMEOUT_SECONDS + SLACK_SECONDS + 5)
    except TimeoutError:
        answer = b"(still open)"
    closed_after = time.monotonic() - started
    writer.close()
    return answer, closed_after


@pytest.mark.timeout(180)
async def test_100_stalled_uploads_are_closed_in_time_and_healthz_keeps_answering(
    tmp_path: Path, temporal_address: str
) -> None:
    async with running_sidecar(
        tmp_path, temporal_address,
        extra_env={"HANDSHAKE_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS)},
    ) as sidecar:  # fmt: skip
        port = int(sidecar.url.rsplit(":", 1)[1])
        stalled = [asyncio.create_task(stall(port, authorized=i % 2 == 0)) for i in range(STALLED)]
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=sidecar.url, timeout=10) as http:
            while not all(task.done() for task in stalled):
                started = time.monotonic()
                assert (await http.get("/healthz")).status_code == 200
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.1)
        results = [task.result() for task in stalled]
    authorized, unauthorized = results[0::2], results[1::2]
    for answer, closed_after in unauthorized:
        assert answer.startswith(b"HTTP/1.1 401"), answer
        assert b'"code":"unauthenticated"' in answer.replace(b" ", b"")
        assert closed_after < SLACK_SECONDS
    for answer, closed_after in authorized:
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"code":"body_timeout"' in answer.replace(b" ", b"")
        assert BODY_TIMEOUT_SECONDS - 0.5 < closed_after < BODY_TIMEOUT_SECONDS + SLACK_SECONDS
    assert latencies, "healthz was never asked"
    assert max(latencies) < 1.0, sorted(latencies)[-5:]


async def stall_in_headers(port: int) -> tuple[bytes, float]:
    """Send part of a request's headers, then nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: sidecar\r\nX-Slow: ")
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(-1), BODY_TIMEOUT_SECONDS + SLACK_SECONDS + 5)
    except TimeoutError:
        answer = b"(still open)"
    writer.close()
    return answer, time.monotonic() - started


@pytest.mark.timeout(180)
async def test_connections_stalled_in_their_headers_are_closed_and_keep_alive_still_works(
    tmp_path: Path, temporal_address: str
) -> None:
    async with running_sidecar(
        tmp_path, temporal_address,
        extra_env={"HANDSHAKE_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS)},
    ) as sidecar:  # fmt: skip
        port = int(sidecar.url.rsplit(":", 1)[1])
        results = await asyncio.gather(*(stall_in_headers(port) for _ in range(20)))
        # Several requests on one kept-alive connection, each within the timeout: served.
        async with httpx.AsyncClient(base_url=sidecar.url, timeout=10) as http:
            for _ in range(3):
                assert (await http.get("/healthz")).status_code == 200
                await asyncio.sleep(BODY_TIMEOUT_SECONDS / 4)
    for answer, closed_after in results:
        assert answer == b"", answer  # cut off: no request, no answer
        assert BODY_TIMEOUT_SECONDS - 0.5 < closed_after < BODY_TIMEOUT_SECONDS + SLACK_SECONDS


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handshake_obs", "--log-json", "serve"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_serve_on_a_non_loopback_address_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    """Nothing is bound: the refusal comes before the server starts."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HANDSHAKE_")}
    env.update(
        HANDSHAKE_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
        HANDSHAKE_LISTEN_ADDRESS=f"0.0.0.0:{free_port()}",  # refused, never bound
        HANDSHAKE_COMPLETION_TOKEN=COMPLETION_TOKEN,
    )
    started = time.monotonic()
    refused = serve(env)
    assert refused.returncode == 2, refused.stderr
    assert time.monotonic() - started < 30
    message = refused.stderr
    assert "refusing to serve on 0.0.0.0" in message
    assert "operator, inventory" in message
    assert "HANDSHAKE_ALLOW_UNAUTHENTICATED=true" in message
    assert not (tmp_path / "ledger.db").exists()  # refused before anything was opened
