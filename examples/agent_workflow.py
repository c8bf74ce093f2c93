"""The workflow of examples/agent_worker.py: it asks an agent and waits for the answer.

Kept in its own module: the Temporal sandbox re-imports a workflow's module, and a module
with activities and network clients in it would not pass its checks.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn
class AskAgent:
    """Hands the prompt off to the agent (an activity that completes asynchronously)."""

    @workflow.run
    async def run(self, prompt: str) -> str:
        answer: str = await workflow.execute_activity(
            "ask_agent", prompt, start_to_close_timeout=timedelta(minutes=10)
        )
        return answer
