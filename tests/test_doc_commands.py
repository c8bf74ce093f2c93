"""Every runnable shell block of README.md and docs/ runs as written against a local stack:
a real sidecar process on the Temporal dev server, holding pending handoffs of real
workflows. (tests/unit/test_doc_blocks.py checks that every other block says why it is not
run.)

The documents' example handoff ids stand for real ones: the first id a block names is a
pending handoff to ``billing`` whose workflow id starts ``invoice-``, the second another.
``$CALLBACK_URL`` is a fresh pending handoff's callback URL for each block, ``$TOKEN`` the
completion token, ``$HANDSHAKE_URL`` the sidecar, and ``handshake-obs`` is on ``PATH``.
A console block's command is expected to fail exactly when the documents print an error line
(``handshake-obs: ...``) under it.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from .support.doc_blocks import PROJECT_ROOT, ShellBlock, shell_blocks
from .support.operator_traffic import hand_off
from .support.sidecar import (
    COMPLETION_TOKEN,
    OPERATOR_TOKEN,
    ExternalReceiver,
    Sidecar,
    running_sidecar,
)

RUNNABLE = [b for b in shell_blocks() if b.runnable]
_EXAMPLE_ID = re.compile(r"ho_[A-Za-z0-9_-]{24}")
#: An example time in the docs, run as a time in the future.
_EXAMPLE_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
#: Temporal's own timeout of the handoffs the blocks act on: past every documented extension.
_DOCUMENTED_WAIT = 2 * 24 * 3600.0


@pytest.fixture
async def sidecar(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> AsyncIterator[Sidecar]:
    async with running_sidecar(
        tmp_path,
        temporal_address,
        targets={"billing": receiver.url, "approval": receiver.url},
        extra_env={"HANDSHAKE_REAPER_INTERVAL_SECONDS": "3600"},
    ) as running:
        yield running


async def run_shell(script: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
async def test_a_documented_block_runs_as_written(
    block: ShellBlock,
    sidecar: Sidecar,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
) -> None:
    async def pending(target: str = "billing") -> str:
        sent = await hand_off(
            plain_client, workflows, sidecar, receiver, target=target,
            workflow_id=f"invoice-{os.urandom(4).hex()}",
            # Long enough for the documented extensions (extend refuses a deadline past
            # Temporal's own timeout).
            start_to_close_seconds=_DOCUMENTED_WAIT,
        )  # fmt: skip
        return sent.handoff_id

    examples = list(dict.fromkeys(_EXAMPLE_ID.findall(block.text)))
    real = {example: await pending() for example in examples}
    callback = f"{sidecar.url}/v1/handoffs/{await pending()}"
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDSHAKE_")} | {
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "HANDSHAKE_URL": sidecar.url,
        "HANDSHAKE_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "CALLBACK_URL": callback,
        "TOKEN": COMPLETION_TOKEN,
    }

    # A date in the docs stands for one in the future (extend refuses a past deadline).
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def as_run(text: str) -> str:
        for example, handoff_id in real.items():
            text = text.replace(example, handoff_id)
        return _EXAMPLE_TIME.sub(tomorrow, text)

    if block.language == "console":
        for command, fails in block.commands():
            code, out, err = await run_shell("set -o pipefail\n" + as_run(command), env)
            if fails:
                assert code != 0, f"{block.where}: {command!r} was to fail\n{out}"
                assert err.startswith("handshake-obs: "), err
            else:
                assert code == 0, f"{block.where}: {command!r} exited {code}\n{out}\n{err}"
                assert "Traceback" not in err, err
    else:
        code, out, err = await run_shell("set -euo pipefail\n" + as_run(block.text), env)
        assert code == 0, f"{block.where} exited {code}\n{out}\n{err}"
        assert "Traceback" not in err, err
