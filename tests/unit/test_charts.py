"""The status page's pictures: inline SVG with labelled axes and the numbers drawn."""

from __future__ import annotations

import html
import re

from handshake_obs._records import PendingSummary
from handshake_obs.ledger import FinishedLatency
from handshake_obs.sidecar._charts import latency_chart, pending_chart
from handshake_obs.sidecar._history import SAMPLES_KEPT, PendingHistory, PendingSample

T0 = 1_800_000_000.0


def test_pending_chart_draws_one_line_per_target_ending_at_its_current_count() -> None:
    samples = [
        PendingSample(T0, {"billing": 1}),
        PendingSample(T0 + 15, {"billing": 4, "approval": 2}),
        PendingSample(T0 + 30, {"billing": 7, "approval": 0}),
    ]
    svg = pending_chart(samples)
    lines = dict(re.findall(r'data-target="([^"]+)" data-last="(\d+)"', svg))
    assert lines == {"approval": "0", "billing": "7"}
    assert "billing (7)" in svg  # the legend
    assert ">10</text>" in svg  # the axis top, a round number above the largest count
    assert "<script" not in svg
    assert "http" not in svg.replace("http://www.w3.org", "")  # nothing fetched


def test_pending_chart_says_it_fills_in_before_there_are_two_samples() -> None:
    assert "fills in as this process samples" in pending_chart([PendingSample(T0, {"a": 1})])


def test_latency_chart_counts_each_range_and_states_the_quantiles() -> None:
    took = [0.5, 0.7, 5, 30, 30, 45, 400, 7200, 90000]
    svg = latency_chart([FinishedLatency("t", "completed", s) for s in took], window="60 min")
    bars = {
        html.unescape(label): n
        for label, n in re.findall(r'data-range="([^"]+)" data-count=(\d+)', svg)
    }
    assert bars == {
        "≤ 1s": "2", "≤ 10s": "1", "≤ 1m": "3", "≤ 10m": "1", "≤ 1h": "0", "≤ 6h": "1",
        "≤ 1d": "0", "> 1d": "1",
    }  # fmt: skip
    assert "p50: 30s" in svg
    fast = latency_chart([FinishedLatency("t", "completed", 0.25)], window="60 min")
    assert "p50: 250ms" in fast
    assert "9 handoffs" in svg
    assert "No handoff finished" in latency_chart([], window="60 minutes")


def test_the_history_keeps_the_last_hour_and_adds_the_pages_own_reading() -> None:
    history = PendingHistory()
    for n in range(SAMPLES_KEPT + 5):
        history.add(T0 + n, [PendingSummary("billing", n, None, {})])
    assert len(history.samples) == SAMPLES_KEPT
    drawn = history.with_now(T0 + 999, [PendingSummary("billing", 3, None, {})])
    assert drawn[0].by_target == {"billing": 5}
    assert drawn[-1] == PendingSample(T0 + 999, {"billing": 3})
