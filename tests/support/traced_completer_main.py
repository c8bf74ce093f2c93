"""A traced completer process: completes, fails, heartbeats and reaps handoffs on command.

    OTEL_EXPORTER_OTLP_ENDPOINT=... python -m tests.support.traced_completer_main \
        ADDRESS LEDGER_PATH

Reads one JSON command per line on stdin and answers one JSON line on stdout, after the
spans of the command have been exported:

* ``{"op": "complete" | "fail" | "heartbeat", "handoff_id": ...}`` or with ``"token"`` (hex)
  instead of ``handoff_id``; ``fail`` takes ``error_type`` and ``message``;
* ``{"op": "reap"}``: one reaper scan; answers the results;
* ``{"op": "metrics"}``: answers the OpenMetrics exposition (with exemplars).

Answers ``{"ok": true, ...}`` or ``{"ok": false, "error": "<exception type>"}``. Logs go to
stderr as JSON. End of input stops it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest
from temporalio.client import Client

from handshake_obs import (
    Completer,
    Handshake,
    HandshakeConfig,
    HandshakeError,
    Reaper,
    configure_logging,
    configure_tracing,
    shutdown_tracing,
)


async def execute(
    command: dict[str, Any], completer: Completer, reaper: Reaper, registry: CollectorRegistry
) -> dict[str, Any]:
    op = command["op"]
    if op == "metrics":
        return {"openmetrics": generate_latest(registry).decode()}  # type: ignore[no-untyped-call]
    if op == "reap":
        results = await reaper.reap_once()
        return {"reaped": [[r.record.handoff_id, r.result] for r in results]}
    ref: str | bytes = (
        bytes.fromhex(command["token"]) if "token" in command else command["handoff_id"]
    )
    if op == "complete":
        await completer.complete(ref, command.get("result"))
    elif op == "fail":
        await completer.fail(ref, error_type=command["error_type"], message=command["message"])
    elif op == "heartbeat":
        await completer.heartbeat(ref, command.get("progress"))
    else:
        raise ValueError(f"unknown op {op!r}")
    return {}


async def main(address: str, ledger_path: str) -> None:
    configure_logging(json=True)  # to stderr: stdout carries the answers
    provider = configure_tracing()
    if provider is None:
        raise SystemExit("OTEL_EXPORTER_OTLP_ENDPOINT is not set")
    registry = CollectorRegistry()
    config = HandshakeConfig(ledger_url=f"sqlite:///{ledger_path}", targets=("agent",))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        async with Handshake(config, registry=registry, tracer_provider=provider) as handshake:
            client = await Client.connect(address, interceptors=[handshake.interceptor])
            completer = handshake.completer(client)
            reaper = handshake.reaper(client)
            sys.stdout.write("READY\n")
            sys.stdout.flush()
            while line := await reader.readline():
                command = json.loads(line)
                try:
                    answer = {"ok": True, **await execute(command, completer, reaper, registry)}
                except HandshakeError as err:
                    answer = {"ok": False, "error": type(err).__name__}
                # The test reads spans right after the answer: export them first.
                await asyncio.to_thread(provider.force_flush)
                sys.stdout.write(json.dumps(answer) + "\n")
                sys.stdout.flush()
    finally:
        shutdown_tracing(provider)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
