"""The README's Python example is ``examples/agent_worker.py``, and it runs as written: against
the Temporal dev server, with its own SQLite ledger, it runs one workflow to its end through an
asynchronous completion by handoff id, and the ledger holds that handoff as completed."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from pathlib import Path

from .support.ports import free_port
from .support.sidecar import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "agent_worker.py"


def readme_python_blocks() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)


def test_the_readme_example_is_taken_from_the_runnable_file() -> None:
    """Every line of the README's worker example is a line of examples/agent_worker.py (the
    file adds what the README leaves out: the agent, the workflow, the output)."""
    example = EXAMPLE.read_text()
    blocks = [b for b in readme_python_blocks() if "HandshakePlugin(" in b]
    assert blocks, "the README has no HandshakePlugin example"
    lines = {line.rstrip() for line in example.splitlines()}
    missing = [line for line in blocks[0].splitlines() if line.strip() and line not in lines]
    assert missing == [], f"README lines not in {EXAMPLE.name}: {missing}"


async def test_the_example_runs_a_workflow_to_its_end_through_an_async_completion(
    tmp_path: Path, temporal_address: str
) -> None:
    ledger = tmp_path / "ledger.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDSHAKE_", "TEMPORAL_"))}
    env |= {
        "TEMPORAL_ADDRESS": temporal_address,
        "HANDSHAKE_LEDGER_URL": f"sqlite:///{ledger}",
        "METRICS_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    # handshake-obs logs its handoffs too; the program's own output is its last line.
    assert out.decode().strip().splitlines()[-1] == "an answer to 'what is 6 x 7?'"
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT target, state, outcome FROM handoffs").fetchall()
    assert rows == [("agent-runner", "finished", "completed")]
