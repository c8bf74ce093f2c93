"""One handoff end to end with an installed handshake-obs, and what each extra adds.

Run by tests/test_packaging.py with the Python of a fresh virtualenv that has the built wheel
(and some extras) and nothing else of this repository: it imports only the installed
package and the SDK. ::

    python wheel_story.py ADDRESS LEDGER_URL EXTRA[,EXTRA...] [OTLP_ENDPOINT]

A worker and a completer, each connected with ``HandshakePlugin``, hand off and complete one
activity against the Temporal at ADDRESS, recorded in LEDGER_URL. Then, for each extra named,
what it brings is used; for each extra not installed, the part that needs it must fail
with the error that names it. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import handshake_obs
from handshake_obs import HandshakeConfig, HandshakePlugin, MissingExtraError

_HANDED: asyncio.Queue[str] = asyncio.Queue()

#: Extra -> a module that needs it.
PARTS = {
    "sidecar": "handshake_obs.sidecar",
    "postgres": "handshake_obs.ledger.postgres",
    "export": "handshake_obs.artifacts._rule_file",
}


@activity.defn
async def ask(prompt: str) -> str:
    async with handshake_obs.handoff(target="agent") as h:
        _HANDED.put_nowait(h.handoff_id)
    raise AssertionError("unreachable")


@workflow.defn
class AskWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        result: str = await workflow.execute_activity(
            ask, prompt, start_to_close_timeout=timedelta(seconds=60)
        )
        return result


async def handoff(address: str, ledger_url: str) -> dict[str, Any]:
    config = HandshakeConfig(ledger_url=ledger_url, targets=("agent",))
    worker_plugin = HandshakePlugin(config, registry=CollectorRegistry())
    completer_plugin = HandshakePlugin(config, registry=CollectorRegistry())
    client = await Client.connect(address, plugins=[worker_plugin])
    queue = f"wheel-{uuid.uuid4()}"
    async with completer_plugin:
        completer_client = await Client.connect(address, plugins=[completer_plugin])
        async with Worker(
            client,
            task_queue=queue,
            workflows=[AskWorkflow],
            activities=[ask],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            handle = await client.start_workflow(
                AskWorkflow.run, "hello", id=f"wheel-{uuid.uuid4()}", task_queue=queue
            )
            handoff_id = await asyncio.wait_for(_HANDED.get(), 30)
            await completer_plugin.completer(completer_client).complete(handoff_id, "answered")
            result = await handle.result()
        record = await completer_plugin.handshake.ledger.get(handoff_id)
        assert record is not None
        return {"result": result, "outcome": record.outcome}


def missing_extras(installed: set[str]) -> dict[str, str]:
    """For every extra not installed, the error its part raises."""
    import importlib  # noqa: PLC0415

    errors = {}
    for extra, module in PARTS.items():
        if extra in installed:
            importlib.import_module(module)
            continue
        try:
            importlib.import_module(module)
        except MissingExtraError as err:
            errors[extra] = str(err)
        else:
            errors[extra] = "imported without its extra"
    return errors


def otlp(endpoint: str | None) -> str:
    from handshake_obs import TracingConfig, configure_tracing, shutdown_tracing  # noqa: PLC0415

    try:
        provider = configure_tracing(TracingConfig(endpoint=endpoint), set_global=False)
    except MissingExtraError as err:
        return str(err)
    assert provider is not None
    shutdown_tracing(provider)
    return "exporting"


def main(address: str, ledger_url: str, extras: str, endpoint: str | None = None) -> None:
    installed = set(filter(None, extras.split(",")))
    report = asyncio.run(handoff(address, ledger_url))
    report["missing"] = missing_extras(installed)
    report["otlp"] = otlp(endpoint or "http://127.0.0.1:4317")
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
