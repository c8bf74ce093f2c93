"""``handshake-obs pending | show | fail | extend`` as an operator runs them: the real command in
a subprocess, against a real sidecar process holding handoffs of real workflows."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from handshake_obs.cli._inventory import pending_command
from handshake_obs.cli._parser import build_parser
from handshake_obs.cli._time import parse_duration
from handshake_obs.config import read_settings

from .support.operator_traffic import SentHandoff, assert_no_token, hand_off, ledger_tokens
from .support.ports import free_port
from .support.sidecar import (
    COMPLETION_TOKEN,
    OPERATOR_TOKEN,
    PROJECT_ROOT,
    ExternalReceiver,
    Sidecar,
    running_sidecar,
)

INVENTORY_TOKEN = "test-inventory-token-0123456789"


@dataclass
class Run:
    """How one command ended."""

    code: int
    out: str
    err: str


@pytest.fixture
async def sidecar(
    tmp_path: Path, temporal_address: str, receiver: ExternalReceiver
) -> AsyncIterator[Sidecar]:
    """A sidecar that protects its inventory and never reaps during a test."""
    async with running_sidecar(
        tmp_path,
        temporal_address,
        targets={"billing": receiver.url, "approval": receiver.url},
        extra_env={
            "HANDSHAKE_INVENTORY_TOKEN": INVENTORY_TOKEN,
            "HANDSHAKE_REAPER_INTERVAL_SECONDS": "3600",
        },
    ) as running:
        yield running


def cli_env(sidecar: Sidecar | None, **overrides: str) -> dict[str, str]:
    """The environment of an operator's shell: no stray HANDSHAKE_* from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDSHAKE_")}
    if sidecar is not None:
        env |= {
            "HANDSHAKE_URL": sidecar.url,
            "HANDSHAKE_INVENTORY_TOKEN": INVENTORY_TOKEN,
            "HANDSHAKE_OPERATOR_TOKEN": OPERATOR_TOKEN,
        }
    return env | overrides


async def cli(env: dict[str, str], *args: str) -> Run:
    """``python -m handshake_obs ARGS`` with ``env``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handshake_obs", *args,
        cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def table_rows(text: str) -> dict[str, list[str]]:
    """The table's rows by handoff id, split into columns (two or more spaces apart)."""
    lines = text.splitlines()
    columns = ["HANDOFF", "WORKFLOW", "TARGET", "AGE", "DEADLINE", "STATE"]
    # A listing with finished handoffs adds TOOK (start to outcome) at the end.
    assert lines[0].split() in (columns, [*columns, "TOOK"]), lines[0]
    return {
        cells[0]: cells
        for line in lines[1:]
        if line.startswith("ho_") and (cells := re.split(r"\s{2,}", line))
    }


async def traffic(
    plain_client: Client, workflows: str, sidecar: Sidecar, receiver: ExternalReceiver
) -> dict[str, SentHandoff]:
    """Two pending billing handoffs (one overdue), one pending approval, one completed."""
    sent = {
        "overdue": await hand_off(
            plain_client, workflows, sidecar, receiver, target="billing", deadline_seconds=1
        ),
        "billing": await hand_off(plain_client, workflows, sidecar, receiver, target="billing"),
        "approval": await hand_off(plain_client, workflows, sidecar, receiver, target="approval"),
        "done": await hand_off(plain_client, workflows, sidecar, receiver, target="billing"),
    }
    async with sidecar.client(COMPLETION_TOKEN) as http:
        done = await http.post(
            f"/v1/handoffs/{sent['done'].handoff_id}/complete", json={"result": "ok"}
        )
        assert done.status_code == 200, done.text
    await asyncio.sleep(1.2)  # the overdue one's deadline passes
    return sent


async def test_pending_shows_a_table_of_handoffs_filtered_by_target_state_age_and_limit(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    sent = await traffic(plain_client, workflows, sidecar, receiver)
    env = cli_env(sidecar)
    everything, approval, finished, every_state, old, limited, as_json = await asyncio.gather(
        cli(env, "pending"),
        cli(env, "pending", "--target", "approval"),
        cli(env, "pending", "--state", "finished"),
        cli(env, "pending", "--state", "all"),
        cli(env, "pending", "--older-than", "1h"),
        cli(env, "pending", "--limit", "2"),
        cli(env, "pending", "--json", "--target", "billing"),
    )
    for run in (everything, approval, finished, every_state, old, limited, as_json):
        assert run.code == 0, run.err
        assert run.err == ""

    rows = table_rows(everything.out)
    assert set(rows) == {sent[k].handoff_id for k in ("overdue", "billing", "approval")}
    overdue = rows[sent["overdue"].handoff_id]
    assert overdue[1] == sent["overdue"].handle.id
    assert overdue[2] == "billing"
    assert re.fullmatch(r"\d+s", overdue[3]), overdue
    assert "(overdue " in overdue[4]
    assert overdue[5] == "pending"
    assert "(in " in rows[sent["billing"].handoff_id][4]
    assert list(rows) == [sent[k].handoff_id for k in ("overdue", "billing", "approval")]

    assert set(table_rows(approval.out)) == {sent["approval"].handoff_id}
    assert table_rows(finished.out)[sent["done"].handoff_id][5] == "completed"
    assert set(table_rows(finished.out)) == {sent["done"].handoff_id}
    assert set(table_rows(every_state.out)) == {s.handoff_id for s in sent.values()}
    assert old.out == "No pending handoff matches.\n"
    assert len(table_rows(limited.out)) == 2
    assert "more match" in limited.out

    lines = [json.loads(line) for line in as_json.out.splitlines()]
    assert {item["handoff_id"] for item in lines} == {
        sent["overdue"].handoff_id,
        sent["billing"].handoff_id,
    }
    assert all(item["target"] == "billing" and "task_token" not in item for item in lines)
    tokens = [*ledger_tokens(sidecar), *(s.task_token for s in sent.values())]
    assert_no_token(everything.out + every_state.out + as_json.out, tokens)


async def test_pending_and_show_search_by_handoff_id_and_workflow_id_prefix(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    """The status page's search from a shell: the same filters, the same answers."""
    first = await hand_off(
        plain_client, workflows, sidecar, receiver, workflow_id=f"order-{os.getpid()}-1"
    )
    second = await hand_off(
        plain_client, workflows, sidecar, receiver, workflow_id=f"order-{os.getpid()}-2"
    )
    other = await hand_off(plain_client, workflows, sidecar, receiver, target="approval")
    env = cli_env(sidecar)
    prefix, by_id, show_oldest, show_none, show_nothing_given, show_both = await asyncio.gather(
        cli(env, "pending", "--workflow-id", f"order-{os.getpid()}-"),
        cli(env, "pending", "--handoff-id", other.handoff_id),
        cli(env, "show", "--workflow-id", f"order-{os.getpid()}-"),
        cli(env, "show", "--workflow-id", "no-such-workflow-"),
        cli(env, "show"),
        cli(env, "show", first.handoff_id, "--target", "billing"),
    )
    assert prefix.code == 0, prefix.err
    assert list(table_rows(prefix.out)) == [first.handoff_id, second.handoff_id]
    assert list(table_rows(by_id.out)) == [other.handoff_id]
    assert show_oldest.code == 0, show_oldest.err
    fields = dict(
        re.split(r"\s{2,}", line, maxsplit=1)
        for line in show_oldest.out.splitlines()
        if not line.startswith("(")
    )
    assert fields["handoff_id"] == first.handoff_id
    assert "(the oldest of several matches" in show_oldest.out
    assert (show_none.code, show_none.err) == (
        1,
        "handshake-obs: no handoff matches these filters\n",
    )
    assert show_nothing_given.code == 1
    assert "give a handoff id, or a filter" in show_nothing_given.err
    assert (show_both.code, show_both.err) == (
        1,
        "handshake-obs: give a handoff id or filters, not both\n",
    )


async def test_pending_state_finished_counts_age_from_the_start_and_adds_took(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    sent = await hand_off(plain_client, workflows, sidecar, receiver)
    async with sidecar.client(COMPLETION_TOKEN) as http:
        done = await http.post(f"/v1/handoffs/{sent.handoff_id}/complete", json={"result": 1})
        assert done.status_code == 200, done.text
    await asyncio.sleep(2.2)  # the handoff took well under 2 s; its age grows past that
    listed = await cli(cli_env(sidecar), "pending", "--state", "finished")
    assert listed.code == 0, listed.err
    assert listed.out.splitlines()[0].split()[-1] == "TOOK"
    row = table_rows(listed.out)[sent.handoff_id]
    age, took = parse_duration(row[3]), parse_duration(row[6])
    assert took < 2 <= age, row


async def test_pending_json_into_a_closed_pipe_exits_quietly(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    """``pending --json | head -1`` once head has gone: no BrokenPipeError traceback."""
    await hand_off(plain_client, workflows, sidecar, receiver)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "handshake_obs", "pending", "--json",
            cwd=PROJECT_ROOT, env=cli_env(sidecar),
            stdout=write_end, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert err.decode() == ""
    assert process.returncode == 0


async def test_pending_follows_next_cursor_pages_up_to_the_limit(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    sent = [await hand_off(plain_client, workflows, sidecar, receiver) for _ in range(5)]
    parser = build_parser()
    settings = read_settings(cli_env(sidecar))

    async def listing(*args: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        code = await asyncio.to_thread(
            pending_command,
            parser.parse_args(["pending", *args]), settings,
            out=out, err=err, page_size=2,
        )  # fmt: skip
        assert code == 0, err.getvalue()
        return out.getvalue()

    every = table_rows(await listing())
    assert list(every) == [s.handoff_id for s in sent]  # three pages of 2, 2, 1
    four = await listing("--limit", "4")
    assert list(table_rows(four)) == [s.handoff_id for s in sent[:4]]
    assert "(4 shown; more match" in four


async def test_show_prints_every_field_and_the_links_never_the_token(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    sent = await hand_off(plain_client, workflows, sidecar, receiver, target="approval")
    env = cli_env(sidecar)
    text, as_json = await asyncio.gather(
        cli(env, "show", sent.handoff_id), cli(env, "show", "--json", sent.handoff_id)
    )
    assert text.code == 0, text.err
    assert as_json.code == 0, as_json.err
    view = json.loads(as_json.out)
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in text.out.splitlines())
    expected = {name for name in view if name != "links"} | {
        f"links.{name}" for name in view["links"]
    }
    assert set(fields) == expected
    assert fields["handoff_id"] == sent.handoff_id
    assert fields["workflow_id"] == sent.handle.id
    assert fields["run_id"] == view["run_id"]
    assert fields["target"] == "approval"
    assert fields["state"] == "pending"
    assert fields["outcome"] == "-"
    assert fields["activity_type"] == "handshake.http_handoff"
    assert fields["token_fingerprint"] == view["token_fingerprint"]
    assert fields["deadline"].startswith(view["deadline"])
    assert "(in " in fields["deadline"]
    assert fields["links.temporal_ui"] == (
        f"http://localhost:8233/namespaces/default/workflows/{sent.handle.id}/"
        f"{view['run_id']}/history"
    )
    assert fields["progress"] == "-"
    assert "task_token" not in view
    assert_no_token(text.out + as_json.out, ledger_tokens(sidecar))


async def test_fail_fails_the_workflow_with_handoff_failed_by_operator(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    sent = await hand_off(plain_client, workflows, sidecar, receiver)
    run = await cli(
        cli_env(sidecar), "fail", sent.handoff_id, "--reason", "vendor lost the request"
    )
    assert run.code == 0, run.err
    assert sent.handoff_id in run.out
    assert "HandoffFailedByOperator: vendor lost the request" in run.out
    result = await sent.handle.result()
    assert result["error_type"] == "HandoffFailedByOperator"
    assert result["message"] == "vendor lost the request"

    again = await cli(cli_env(sidecar), "fail", sent.handoff_id, "--reason", "twice")
    assert again.code == 1
    assert again.err.count("\n") == 1
    assert "already finished" in again.err
    assert "HTTP 409 already_finished" in again.err


async def test_extend_moves_the_deadline_by_a_duration_or_to_a_time(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    # Temporal's own timeout (6 years) leaves room for the deadlines below.
    sent = await hand_off(
        plain_client, workflows, sidecar, receiver, start_to_close_seconds=6 * 365 * 86400
    )
    env = cli_env(sidecar)

    async def deadline() -> datetime:
        async with sidecar.client(INVENTORY_TOKEN) as http:
            view = (await http.get(f"/v1/handoffs/{sent.handoff_id}")).json()
        return datetime.fromisoformat(view["deadline"])

    before = datetime.now(UTC)
    by, naive = await asyncio.gather(
        cli(env, "extend", sent.handoff_id, "--by", "2h"),
        cli(env, "extend", sent.handoff_id, "--until", "2030-11-23T12:00:00"),
    )
    assert by.code == 0, by.err
    moved = await deadline()
    assert before + timedelta(hours=2) <= moved <= datetime.now(UTC) + timedelta(hours=2)
    assert by.out.startswith(f"{sent.handoff_id}: deadline {moved:%Y-%m-%d %H:%M:%S}Z (in ")
    assert "(in 1h59m)" in by.out or "(in 2h00m)" in by.out
    assert naive.code == 2
    assert "needs a timezone" in naive.err

    until = await cli(env, "extend", sent.handoff_id, "--until", "2030-11-23T12:00:00Z")
    assert until.code == 0, until.err
    assert await deadline() == datetime(2030, 11, 23, 12, tzinfo=UTC)
    assert "deadline 2030-11-23 12:00:00Z (in " in until.out

    past = await cli(env, "extend", sent.handoff_id, "--until", "2040-01-01T00:00:00Z")
    assert past.code == 1
    assert "when Temporal's own timeout closes the activity attempt" in past.err
    assert "deadline_past_temporal_timeout" in past.err
    assert await deadline() == datetime(2030, 11, 23, 12, tzinfo=UTC)


async def test_wrong_or_missing_token_exits_1_with_the_apis_message(
    sidecar: Sidecar, receiver: ExternalReceiver, plain_client: Client, workflows: str
) -> None:
    sent = await hand_off(plain_client, workflows, sidecar, receiver)
    wrong_operator = cli_env(sidecar, HANDSHAKE_OPERATOR_TOKEN="not-the-operator-token")
    no_inventory = cli_env(sidecar)
    del no_inventory["HANDSHAKE_INVENTORY_TOKEN"]
    no_operator = cli_env(sidecar)
    del no_operator["HANDSHAKE_OPERATOR_TOKEN"]
    fail, listing, extend, overridden = await asyncio.gather(
        cli(wrong_operator, "fail", sent.handoff_id, "--reason", "stuck"),
        cli(no_inventory, "pending"),
        cli(no_operator, "extend", sent.handoff_id, "--by", "1h"),
        cli(wrong_operator, "pending", "--token", "wrong-inventory-token"),
    )
    assert (fail.code, fail.out) == (1, "")
    assert fail.err == ("handshake-obs: the bearer token is not valid (HTTP 401 unauthenticated)\n")
    assert (listing.code, listing.out) == (1, "")
    assert "a bearer token is required (inventory)" in listing.err
    assert (extend.code, extend.out) == (1, "")
    assert "HANDSHAKE_OPERATOR_TOKEN" in extend.err
    assert overridden.code == 1
    assert "the bearer token is not valid" in overridden.err

    right = await cli(wrong_operator, "fail", sent.handoff_id, "--reason", "x", "--token",
                      OPERATOR_TOKEN)  # fmt: skip
    assert right.code == 0, right.err
    assert (await sent.handle.result())["error_type"] == "HandoffFailedByOperator"


async def test_unknown_handoff_exits_1_with_the_apis_message(sidecar: Sidecar) -> None:
    env = cli_env(sidecar)
    unknown, malformed = await asyncio.gather(
        cli(env, "show", "ho_" + "A" * 24), cli(env, "show", "not-a-handoff")
    )
    assert unknown.code == 1
    assert "unknown handoff 'ho_AAAAAAAAAAAAAAAAAAAAAAAA' (HTTP 404 unknown_handoff)" in (
        unknown.err
    )
    assert malformed.code == 1
    assert "is not a handoff id (HTTP 400 malformed_handoff_id)" in malformed.err


async def test_unreachable_sidecar_exits_1_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    by_flag, by_env = await asyncio.gather(
        cli(cli_env(None), "pending", "--url", url),
        cli(cli_env(None, HANDSHAKE_URL=url, HANDSHAKE_OPERATOR_TOKEN="t"),
            "fail", "ho_" + "A" * 24, "--reason", "x"),
    )  # fmt: skip
    for run in (by_flag, by_env):
        assert run.code == 1
        assert run.out == ""
        assert run.err == (
            f"handshake-obs: cannot reach the sidecar at {url} (connection refused); "
            "is it running? Set --url or HANDSHAKE_URL\n"
        )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("45", 45)],
)
def test_durations_read_as_an_operator_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2x", "h", "1h 30m", "-5", "nan", "1.5.2h"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
