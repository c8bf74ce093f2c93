"""What Temporal itself says about a handoff's activity: when its own timeout closes it.

The ledger's deadline is handshake-obs's; Temporal's start-to-close (and schedule-to-close)
timeouts end the activity whatever the ledger says. The handoff page shows both, so an
operator sees which comes first. Asked with a short time limit: a slow or unreachable
Temporal leaves the page up, saying it does not know.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError

from .._records import HandoffRecord
from ._html import age, clock
from ._runtime import SidecarRuntime

#: Longest wait for Temporal's answer before the page says "not known".
DESCRIBE_TIMEOUT = timedelta(seconds=3)


@dataclass(frozen=True, slots=True)
class TemporalTimeout:
    """When Temporal closes the activity by its own timeouts, if known."""

    #: The earliest of the attempt's start-to-close end and the schedule-to-close end.
    closes_at: float | None
    #: Which timeout that is, or why nothing is known.
    what: str

    def describe(self, now: float) -> str:
        """The line the handoff page shows."""
        if self.closes_at is None:
            return self.what
        left = self.closes_at - now
        when = f"{clock(self.closes_at)} UTC"
        due = f"in {age(left)}" if left >= 0 else f"{age(-left)} ago"
        return f"{self.what}: {when} ({due})"


async def temporal_timeout(runtime: SidecarRuntime, record: HandoffRecord) -> TemporalTimeout:
    """Ask Temporal (within :data:`DESCRIBE_TIMEOUT`) for the activity's own timeouts."""
    if not record.is_pending:
        return TemporalTimeout(None, "not asked: the handoff has its outcome")
    client = runtime.client
    if client is None:
        return TemporalTimeout(None, "not known: this sidecar is not connected to Temporal yet")
    described = await _describe(client, record)
    if isinstance(described, TemporalTimeout):
        return described
    for activity in described.raw_description.pending_activities:
        if activity.activity_id == record.activity_id:
            return _of_pending_activity(activity, record)
    return TemporalTimeout(
        None, "Temporal has no such pending activity: it closed it (the reconciler will see)"
    )


async def _describe(
    client: Client, record: HandoffRecord
) -> WorkflowExecutionDescription | TemporalTimeout:
    handle = client.get_workflow_handle(record.workflow_id, run_id=record.run_id)
    try:
        # The connect of a lazy client is not bound by rpc_timeout: wait_for bounds both.
        return await asyncio.wait_for(
            handle.describe(rpc_timeout=DESCRIBE_TIMEOUT), DESCRIBE_TIMEOUT.total_seconds()
        )
    except RPCError as problem:
        return TemporalTimeout(None, f"not known: Temporal answered {problem.status.name}")
    except TimeoutError:
        return TemporalTimeout(None, "not known: Temporal did not answer in time")
    except RuntimeError:  # the SDK's bridge reports a failed connect as a RuntimeError
        return TemporalTimeout(None, "not known: Temporal cannot be reached")


def _of_pending_activity(activity: PendingActivityInfo, record: HandoffRecord) -> TemporalTimeout:
    if activity.attempt != record.attempt:
        return TemporalTimeout(
            None,
            f"Temporal runs attempt {activity.attempt} of this activity, not this "
            f"handoff's attempt {record.attempt}: this token is dead",
        )
    ends: list[tuple[float, str]] = []
    options = activity.activity_options
    if options.HasField("start_to_close_timeout") and activity.HasField("last_started_time"):
        limit = options.start_to_close_timeout.ToTimedelta()
        started = activity.last_started_time.ToNanoseconds() / 1e9
        ends.append(
            (started + limit.total_seconds(), f"start-to-close {age(limit.total_seconds())}")
        )
    if activity.HasField("expiration_time"):
        ends.append((activity.expiration_time.ToNanoseconds() / 1e9, "schedule-to-close"))
    if not ends:
        return TemporalTimeout(None, "Temporal sets no timeout on this activity")
    closes_at, what = min(ends)
    return TemporalTimeout(closes_at, f"{what} timeout closes the activity")
