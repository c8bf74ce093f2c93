"""The reaper against a real Temporal dev server: lost tokens fail with a typed error, races
end with one outcome, deadlines move."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import (
    HandoffAlreadyFinishedError,
    Handshake,
    HandshakeConfig,
    HandshakeError,
    Outcome,
    TargetPolicy,
)
from handshake_obs.ledger import ledger_from_url

from .conftest import StartWorkflow
from .support.activities import EXTERNAL
from .support.waiting import assert_eventually


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def finished(registry: CollectorRegistry, outcome: str, target: str = "agent") -> float:
    return sample(registry, "handshake_handoffs_finished_total", target=target, outcome=outcome)


async def expired_handoff(start_workflow: StartWorkflow, **fields: Any) -> tuple[Any, Any]:
    """A workflow whose handoff's deadline has already passed (0.2 s)."""
    extra = {"deadline_seconds": 0.2, **fields.pop("extra", {})}
    handle = await start_workflow("hand_off_explicit", extra=extra, **fields)
    delivery = await EXTERNAL.receive(handle.id)
    await asyncio.sleep(0.3)
    return handle, delivery


async def test_lost_token_is_failed_with_handoff_deadline_exceeded_and_its_details(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    handle, delivery = await expired_handoff(start_workflow, target="agent")
    completer = handshake.completer(client)
    await completer.heartbeat(delivery.explicit.handoff_id, {"step": "thinking"}, sequence=7)
    reaper = handshake.reaper(client)

    results = await reaper.reap_once()

    assert [r.result for r in results] == ["reaped"]
    outcome = await handle.result()
    assert outcome["error_type"] == "HandoffDeadlineExceeded"
    assert outcome["non_retryable"] is True
    (details,) = outcome["details"]
    assert details["handoff_id"] == delivery.explicit.handoff_id
    assert details["target"] == "agent"
    assert details["last_progress"] == {"step": "thinking"}
    assert details["last_progress_sequence"] == 7
    assert details["age_seconds"] >= 0.2
    assert details["deadline"].endswith("+00:00")
    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.REAPED
    assert finished(registry, "reaped") == 1
    assert sample(registry, "handshake_reaper_runs_total", result="success") == 1
    assert sample(registry, "handshake_reap_lag_seconds_count") == 1
    assert sample(registry, "handshake_reaper_last_success_timestamp_seconds") > time.time() - 60
    assert await reaper.reap_once() == []


async def test_completion_racing_the_reaper_yields_exactly_one_outcome(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    races = 12
    pairs = await asyncio.gather(
        *(expired_handoff(start_workflow, target="agent") for _ in range(races))
    )
    completer = handshake.completer(client)
    reapers = [handshake.reaper(client) for _ in range(2)]

    async def complete(delivery: Any) -> None:
        # Losing the race to the reaper is the point: its error is expected.
        with contextlib.suppress(HandshakeError):
            await completer.complete(delivery.explicit.handoff_id, "answer")

    await asyncio.gather(*(complete(d) for _, d in pairs), *(r.reap_once() for r in reapers))

    outcomes = []
    for handle, delivery in pairs:
        record = await handshake.ledger.get(delivery.explicit.handoff_id)
        assert record is not None
        result = await handle.result()
        if record.outcome is Outcome.COMPLETED:
            assert result == {"result": "answer"}
        else:
            assert record.outcome is Outcome.REAPED
            assert result["error_type"] == "HandoffDeadlineExceeded"
        outcomes.append(record.outcome)
    assert sum(finished(registry, o.value) for o in Outcome) == races
    assert sample(
        registry, "handshake_handoffs_finished_total", target="agent", outcome="completed"
    ) == outcomes.count(Outcome.COMPLETED)


async def test_handoff_whose_activity_already_timed_out_ends_already_closed(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    registry: CollectorRegistry,
) -> None:
    # The explicit deadline (3 s) is after Temporal's own start-to-close timeout (1 s).
    handle = await start_workflow(
        "hand_off_explicit", target="agent", start_to_close_seconds=1, extra={"deadline_seconds": 3}
    )
    delivery = await EXTERNAL.receive(handle.id)
    assert (await handle.result())["error_type"] == "TimeoutError"
    deadline = delivery.explicit.deadline
    assert deadline is not None
    await asyncio.sleep(max(0.0, deadline - time.time()) + 0.1)

    results = await handshake.reaper(client).reap_once()

    assert [r.result for r in results] == ["already_closed"]
    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.outcome is Outcome.ALREADY_CLOSED
    assert (
        sample(
            registry, "handshake_handoffs_finished_total", target="agent", outcome="already_closed"
        )
        == 1
    )
    assert finished(registry, "reaped") == 0


async def test_extending_the_deadline_holds_the_reaper_off_until_then(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
) -> None:
    handle = await start_workflow(
        "hand_off_explicit", target="agent", extra={"deadline_seconds": 1}
    )
    delivery = await EXTERNAL.receive(handle.id)
    completer = handshake.completer(client)
    reaper = handshake.reaper(client)

    extended = await completer.extend(delivery.explicit.handoff_id, timedelta(seconds=30))
    assert extended.deadline is not None
    assert extended.deadline > time.time() + 25
    await asyncio.sleep(1.2)
    assert await reaper.reap_once() == []

    # A deadline in the past is refused (DeadlineInPastError); a short one, once passed, reaps.
    await completer.extend(delivery.explicit.handoff_id, timedelta(seconds=0.5))
    await asyncio.sleep(0.7)
    assert [r.result for r in await reaper.reap_once()] == ["reaped"]
    assert (await handle.result())["error_type"] == "HandoffDeadlineExceeded"
    with pytest.raises(HandoffAlreadyFinishedError) as refused:
        await completer.extend(delivery.explicit.handoff_id, timedelta(seconds=30))
    assert refused.value.outcome == "reaped"


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "target_policies": {
                "agent": TargetPolicy(
                    deadline=timedelta(seconds=1), heartbeat_extends_by=timedelta(seconds=30)
                )
            }
        }
    ],
)
async def test_heartbeat_extends_the_deadline_when_the_target_policy_says_so(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
) -> None:
    handle = await start_workflow("hand_off_explicit", target="agent")
    delivery = await EXTERNAL.receive(handle.id)
    assert delivery.explicit.deadline is not None
    assert delivery.explicit.deadline < time.time() + 2
    completer = handshake.completer(client)

    await completer.heartbeat(delivery.explicit.handoff_id, {"p": 1})

    record = await handshake.ledger.get(delivery.explicit.handoff_id)
    assert record is not None
    assert record.deadline is not None
    assert record.deadline > time.time() + 25
    await asyncio.sleep(1.2)
    assert await handshake.reaper(client).reap_once() == []
    await completer.complete(delivery.explicit.handoff_id, "ok")
    assert await handle.result() == {"result": "ok"}


@pytest.mark.parametrize(
    "config_overrides", [{"target_policies": {"agent": TargetPolicy(retryable=True)}}]
)
async def test_retryable_target_lets_temporal_retry_after_a_reap(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
) -> None:
    handle, first = await expired_handoff(start_workflow, target="agent", max_attempts=2)

    assert [r.result for r in await handshake.reaper(client).reap_once()] == ["reaped"]

    second = await EXTERNAL.receive(handle.id)
    assert second.attempt == 2
    await handshake.completer(client).complete(second.explicit.handoff_id, "second time")
    assert await handle.result() == {"result": "second time"}
    first_record = await handshake.ledger.get(first.explicit.handoff_id)
    assert first_record is not None
    assert first_record.outcome is Outcome.REAPED


@pytest.mark.parametrize("config_overrides", [{"reaper_interval": timedelta(milliseconds=200)}])
async def test_reaper_runs_in_the_background_at_its_interval(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
) -> None:
    handle = await start_workflow(
        "hand_off_explicit", target="agent", extra={"deadline_seconds": 0.5}
    )
    delivery = await EXTERNAL.receive(handle.id)
    reaper = handshake.reaper(client)
    reaper.start()
    try:

        async def reaped() -> None:
            record = await handshake.ledger.get(delivery.explicit.handoff_id)
            assert record is not None
            assert record.outcome is Outcome.REAPED

        await assert_eventually(reaped, timeout=10)
    finally:
        await reaper.stop()
    assert (await handle.result())["error_type"] == "HandoffDeadlineExceeded"


async def test_reap_once_command_prints_what_it_reaped(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    config: HandshakeConfig,
    temporal_address: str,
) -> None:
    handle, delivery = await expired_handoff(start_workflow, target="agent")
    env = {
        **os.environ,
        "HANDSHAKE_LEDGER_URL": config.ledger_url,
        "HANDSHAKE_TEMPORAL_ADDRESS": temporal_address,
    }
    command = [sys.executable, "-m", "handshake_obs", "--log-json", "reap", "--once"]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].split() == ["RESULT", "HANDOFF", "WORKFLOW", "TARGET", "AGE"]
    assert lines[1].split()[:4] == ["reaped", delivery.explicit.handoff_id, handle.id, "agent"]
    assert lines[-1] == "1 handoff(s) reaped"
    assert (await handle.result())["error_type"] == "HandoffDeadlineExceeded"

    again = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(again.communicate(), 60)
    assert out.decode().splitlines() == ["0 handoff(s) reaped"]


async def test_reap_once_command_takes_target_policies_from_the_config_file(
    handshake: Handshake,
    client: Client,
    worker: Worker,
    start_workflow: StartWorkflow,
    config: HandshakeConfig,
    temporal_address: str,
    tmp_path: Path,
) -> None:
    """``reap`` reads HANDSHAKE_CONFIG_FILE as ``serve`` does: a target the file marks
    ``retryable = true`` is reaped with a retryable error, so Temporal runs it again."""
    handle, _ = await expired_handoff(start_workflow, target="agent", max_attempts=2)
    config_file = tmp_path / "handshake.toml"
    config_file.write_text('[[targets]]\nname = "agent"\nretryable = true\n')
    env = {
        **os.environ,
        "HANDSHAKE_LEDGER_URL": config.ledger_url,
        "HANDSHAKE_TEMPORAL_ADDRESS": temporal_address,
        "HANDSHAKE_CONFIG_FILE": str(config_file),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handshake_obs", "--log-json", "reap", "--once",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1] == "1 handoff(s) reaped"

    second = await EXTERNAL.receive(handle.id, timeout=15)  # a non-retryable reap: none
    assert second.attempt == 2
    await handshake.completer(client).complete(second.explicit.handoff_id, "second time")
    assert await handle.result() == {"result": "second time"}


async def test_reap_once_without_temporal_exits_2_with_a_clear_message(
    config: HandshakeConfig,
) -> None:
    async with ledger_from_url(config.ledger_url):
        pass  # reap expects a ledger: it refuses a missing one before dialling Temporal
    env = {
        **os.environ,
        "HANDSHAKE_LEDGER_URL": config.ledger_url,
        "HANDSHAKE_TEMPORAL_ADDRESS": "127.0.0.1:1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handshake_obs", "--log-json", "reap", "--once",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "cannot reach Temporal at 127.0.0.1:1" in err.decode()
