"""``HandshakePlugin`` with the SDK's ``OpenTelemetryPlugin``, against a real dev server:
a worker and a completer configured only with plugins record and complete handoffs, the
plugin opens and closes its ledger with them, and one trace still spans the handoff
(workflow -> RunActivity -> handoff -> completion), as a real OTLP receiver sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio.client import Client

from handshake_obs import HandshakeConfig, HandshakeInterceptor, HandshakePlugin

from .support.otlp_receiver import OtlpReceiver, ReceivedSpan
from .support.sidecar import PROJECT_ROOT
from .support.waiting import assert_eventually

WORKFLOW = "HandoffWorkflow"


def by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def run_story(temporal_address: str, tmp_path: Path, receiver: OtlpReceiver) -> dict[str, Any]:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.plugin_main", temporal_address,
         str(tmp_path / "ledger.db")],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


async def test_plugins_alone_record_complete_and_keep_one_trace_across_the_handoff(
    temporal_address: str, tmp_path: Path
) -> None:
    with OtlpReceiver() as receiver:
        report = run_story(temporal_address, tmp_path, receiver)
        assert report["results"] == [{"result": "done"}, {"result": 7}]
        assert report["outcomes"] == ["completed", "completed"]
        # Lifecycle: started by Client.connect, stopped with the last worker or the block.
        assert report["started_at_connect"] is True
        assert report["worker_stopped_with_its_worker"] is True
        assert report["completer_running_in_its_block"] is True
        assert report["completer_stopped_after_its_block"] is True

        for workflow_id, handoff_id, target, activity in zip(
            report["workflows"],
            report["handoffs"],
            ["agent", "default"],
            ["hand_off_explicit", "hand_off_plain"],
            strict=True,
        ):

            async def story(workflow_id: str = workflow_id) -> list[ReceivedSpan]:
                (start,) = [
                    s
                    for s in receiver.spans
                    if s.name == f"StartWorkflow:{WORKFLOW}"
                    and workflow_id in json.dumps(s.attributes)
                ]
                return receiver.trace(start.trace_id)

            async def completed(story_of: Any = story, target: str = target) -> list[ReceivedSpan]:
                spans: list[ReceivedSpan] = await story_of()
                assert f"complete {target}" in {s.name for s in spans}
                return spans

            spans = await assert_eventually(completed, timeout=20)
            start = by_name(spans, f"StartWorkflow:{WORKFLOW}")
            run_workflow = by_name(spans, f"RunWorkflow:{WORKFLOW}")
            start_activity = by_name(spans, f"StartActivity:{activity}")
            run_activity = by_name(spans, f"RunActivity:{activity}")
            assert start.parent_span_id is None
            assert run_workflow.parent_span_id == start.span_id
            assert start_activity.parent_span_id == run_workflow.span_id
            assert run_activity.parent_span_id == start_activity.span_id
            handoff = by_name(spans, f"handoff {target}")
            complete = by_name(spans, f"complete {target}")
            assert handoff.parent_span_id == run_activity.span_id
            assert complete.parent_span_id == handoff.span_id
            assert handoff.attributes["handshake.handoff.id"] == handoff_id
            assert complete.attributes["handshake.handoff.id"] == handoff_id
            assert not complete.is_error


def test_the_plugin_adds_one_interceptor_for_client_and_worker() -> None:
    """What a user's ``Client.connect(..., plugins=[plugin])`` gets: the interceptor once,
    in the client's interceptors (the SDK hands it to every worker on that client)."""
    plugin = HandshakePlugin(HandshakeConfig(ledger_url="memory://"), registry=CollectorRegistry())
    config = plugin.configure_client({"interceptors": []})  # type: ignore[typeddict-item]
    (interceptor,) = config["interceptors"]
    assert isinstance(interceptor, HandshakeInterceptor)
    assert plugin.name() == "handshake_obs.HandshakePlugin"


async def test_a_client_connected_with_the_plugin_records_its_completions(
    temporal_address: str,
) -> None:
    plugin = HandshakePlugin(HandshakeConfig(ledger_url="memory://"), registry=CollectorRegistry())
    async with plugin:
        client = await Client.connect(temporal_address, plugins=[plugin])
        assert client.config()["plugins"] == [plugin]
        assert plugin._started
    assert not plugin._started
