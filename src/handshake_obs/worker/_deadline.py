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
    candidates: list[float] = []
    if target_deadline is not None:
        candidates.append(now + target_deadline.total_seconds())
    if info.start_to_close_timeout:
        window = info.start_to_close_timeout
        candidates.append((info.started_time + window - config.deadline_margin(window)).timestamp())
    if info.schedule_to_close_timeout:
        window = info.schedule_to_close_timeout
        # Schedule-to-close counts from the first attempt's scheduling.
        candidates.append(
            (info.scheduled_time + window - config.deadline_margin(window)).timestamp()
        )
    return min(candidates) if candidates else None
