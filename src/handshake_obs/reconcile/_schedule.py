"""When the reconciler looks at a handoff, and when it need not ask Temporal at all.

Young handoffs are checked soon (at ``reconcile_first_check``), then in proportion to their
age (a handoff is never left unchecked for longer than :data:`BACKOFF_RATIO` of its age, up
to ``reconcile_max_check_interval``), so a bypass of a young handoff shows within seconds and
a day-old backlog costs a few calls an hour. The moment Temporal's own timeout of the attempt
passes is always a check time: then no call is needed.
"""

from __future__ import annotations

from .._records import HandoffRecord
from ..config import HandshakeConfig

#: Time between checks as a share of the handoff's age.
BACKOFF_RATIO = 0.5

#: How long after an attempt's own timeout Temporal is trusted to have closed it: its timer
#: fires a moment late, and a completion accepted just before it has to land.
TIMEOUT_GRACE_SECONDS = 2.0


class CheckSchedule:
    """Check times of handoffs, from the configuration."""

    def __init__(self, config: HandshakeConfig) -> None:
        self._first = config.reconcile_first_check.total_seconds()
        self._longest = config.reconcile_max_check_interval.total_seconds()

    @property
    def first_check_seconds(self) -> float:
        """Age at which a handoff is first checked."""
        return self._first

    def next_check(self, record: HandoffRecord, now: float) -> float:
        """When to check ``record`` again, found open at ``now``."""
        age = max(0.0, now - record.started_at)
        wait = min(max(age * BACKOFF_RATIO, self._first), self._longest)
        at = now + wait
        closes = timed_out_at(record)
        if closes is not None and closes > now:
            at = min(at, closes)
        if record.heartbeat_timeout:
            # Temporal closes an attempt whose heartbeats stop; the last one handshake-obs
            # saw tells when that would be at the earliest (others may have come since).
            last = max(record.progress_at or 0.0, record.attempt_started_at or record.started_at)
            expires = last + record.heartbeat_timeout + TIMEOUT_GRACE_SECONDS
            if expires > now:
                at = min(at, expires)
        return at


def timed_out_at(record: HandoffRecord) -> float | None:
    """When Temporal has certainly closed the attempt by its own start-to-close or
    schedule-to-close timeout (None: neither is known)."""
    closes = record.temporal_closes_at
    return None if closes is None else closes + TIMEOUT_GRACE_SECONDS
