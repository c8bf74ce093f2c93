"""The reconciler's schedule and budget, and how a reconciled handoff is shown."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from datetime import timedelta

import pytest

from handshake_obs import ConfigurationError, HandshakeConfig, Outcome, State
from handshake_obs.cli._inventory import format_table
from handshake_obs.config import SidecarSettings
from handshake_obs.reconcile import CallBudget, CheckSchedule
from handshake_obs.reconcile._schedule import TIMEOUT_GRACE_SECONDS, timed_out_at
from handshake_obs.sidecar._views import view_of
from handshake_obs.testing import pending_record

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0
SCHEDULE = CheckSchedule(HandshakeConfig())  # first check at 5 s, at most every 15 min


def test_young_handoffs_are_checked_soon_and_old_ones_in_proportion_to_their_age() -> None:
    record = pending_record(started_at=T0)
    assert SCHEDULE.next_check(record, T0 + 5) == T0 + 5 + 5
    assert SCHEDULE.next_check(record, T0 + 60) == T0 + 60 + 30
    assert SCHEDULE.next_check(record, T0 + 86_400) == T0 + 86_400 + 900


def test_the_moment_temporals_own_timeout_passes_is_a_check_time_needing_no_call() -> None:
    record = dataclasses.replace(
        pending_record(started_at=T0), attempt_started_at=T0, start_to_close_timeout=40.0
    )
    assert timed_out_at(record) == T0 + 40 + TIMEOUT_GRACE_SECONDS
    # Checked at age 30, the next check would be at 45: the timeout comes first.
    assert SCHEDULE.next_check(record, T0 + 30) == T0 + 40 + TIMEOUT_GRACE_SECONDS
    both = dataclasses.replace(record, scheduled_at=T0 - 10, schedule_to_close_timeout=30.0)
    assert both.temporal_closes_at == T0 + 20
    assert timed_out_at(pending_record(started_at=T0)) is None


def test_a_heartbeat_timeout_brings_the_next_check_forward() -> None:
    record = dataclasses.replace(
        pending_record(started_at=T0),
        attempt_started_at=T0,
        heartbeat_timeout=20.0,
        progress_at=T0 + 100,
    )
    assert SCHEDULE.next_check(record, T0 + 110) == T0 + 100 + 20 + TIMEOUT_GRACE_SECONDS


def test_the_schedule_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="reconcile_first_check"):
        HandshakeConfig(reconcile_first_check=timedelta(hours=1))
    with pytest.raises(ConfigurationError, match="reconcile_calls_per_second"):
        HandshakeConfig(reconcile_calls_per_second=0)


async def test_the_budget_holds_calls_to_their_rate() -> None:
    budget = CallBudget(100.0)
    times: list[float] = []

    async def call() -> None:
        await budget.spend()
        times.append(time.monotonic())

    await asyncio.gather(*(call() for _ in range(40)))
    # No burst: 40 calls at 100/s take 0.39 s at least, and no two come closer than the pace.
    assert times[-1] - times[0] >= 0.39 * 0.99
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.01 * 0.9


def test_a_reconciled_handoff_shows_its_reason() -> None:
    record = dataclasses.replace(
        pending_record(started_at=T0, deadline=T0 + 600),
        state=State.FINISHED,
        outcome=Outcome.ALREADY_CLOSED,
        finished_at=T0 + 20,
        error_type="completed_elsewhere",
        attempt_started_at=T0,
        start_to_close_timeout=900.0,
    )
    view = view_of(record, SidecarSettings(), now=T0 + 30)
    assert view.close_reason == "completed_elsewhere"
    assert view.temporal_closes_at is not None
    assert view.temporal_closes_at.timestamp() == T0 + 900
    rows = format_table([view.model_dump(mode="json")])
    # STATE, then TOOK (start to outcome) for a listing with finished handoffs.
    assert rows[1].split()[-3:] == ["already_closed", "(completed_elsewhere)", "20s"]
    completed = dataclasses.replace(record, outcome=Outcome.COMPLETED, error_type=None)
    assert view_of(completed, SidecarSettings(), now=T0 + 30).close_reason is None
