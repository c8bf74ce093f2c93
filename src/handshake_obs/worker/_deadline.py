"""When a handoff is due: explicit, or derived from the activity's own timeouts.

The derived deadline ends a margin before Temporal's own timeout, so the reaper reports a
typed ``HandoffDeadlineExceeded`` before Temporal closes the activity with a bare timeout.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity

from ..config import HandshakeConfig


def derive_deadline(
    info: activity.Info,
    config: HandshakeConfig,
    *,
    explicit: datetime | timedelta | None = None,
    target_deadline: timedelta | None = None,
    now: float,
) -> float | None:
    """Epoch seconds the handoff is due at, or None if nothing bounds it.

    ``explicit`` is an absolute time (timezone-aware) or a duration from ``now``; without
    it, the earliest of the target's default deadline and the activity's timeouts (minus
    the margin) applies.
    """
    if isinstance(explicit, timedelta):
        return now + explicit.total_seconds()
    if isinstance(explicit, datetime):
        if explicit.tzinfo is None:
            raise ValueError("an explicit deadline must be timezone-aware")
        return explicit.timestamp()
    return timeout_deadline(
        config,
        started=info.started_time,
        scheduled=info.scheduled_time,
        start_to_close=info.start_to_close_timeout,
        schedule_to_close=info.schedule_to_close_timeout,
        target_deadline=target_deadline,
        now=now,
    )


def timeout_deadline(
    config: HandshakeConfig,
    *,
    started: datetime,
    scheduled: datetime,
    start_to_close: timedelta | None,
    schedule_to_close: timedelta | None,
    target_deadline: timedelta | None,
    now: float,
) -> float | None:
    """The earliest of the target's default deadline and the activity's timeouts (minus
    the margin); what the worker and the proxy (which sees the timeouts on the wire) use."""
    candidates: list[float] = []
    if target_deadline is not None:
        candidates.append(now + target_deadline.total_seconds())
    if start_to_close:
        candidates.append(
            (started + start_to_close - config.deadline_margin(start_to_close)).timestamp()
        )
    if schedule_to_close:
        # Schedule-to-close counts from the first attempt's scheduling.
        candidates.append(
            (scheduled + schedule_to_close - config.deadline_margin(schedule_to_close)).timestamp()
        )
    return min(candidates) if candidates else None
