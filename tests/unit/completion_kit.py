"""What the unit tests of the completion side share: a clock, a stand-in for Temporal's RPC,
handoff records, and the metric samples they check."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from prometheus_client import CollectorRegistry
from temporalio.service import RPCError, RPCStatusCode

from handshake_obs import HandoffRecord, token_fingerprint
from handshake_obs._tokens import new_handoff_id

#: A fixed "now" the tests start from.
T0: Final = 1_800_000_000.0


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


def rpc_error(status: RPCStatusCode, message: str = "refused") -> RPCError:
    """What Temporal's client raises for a refused call."""
    return RPCError(message, status, b"")


#: Temporal's answer to a call on an attempt it has closed.
NOT_FOUND: Final = RPCStatusCode.NOT_FOUND
#: An answer that never comes: the attempt ignores its timeout.
HANG: Final = "hang"


#: One answer of the fake RPC: None accepts the call, an exception is raised, :data:`HANG`
#: never answers, an event is waited for and then the call is accepted.
Answer = BaseException | asyncio.Event | str | None


@dataclass
class FakeRpc:
    """Stands in for the Temporal call: answers attempt n with ``answers[n]`` (the last one
    again once they run out)."""

    answers: list[Answer] = field(default_factory=lambda: [None])
    #: The RPC timeout each attempt was given.
    timeouts: list[timedelta | None] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.timeouts)

    async def __call__(self, timeout: timedelta | None) -> None:
        answer = self.answers[min(len(self.timeouts), len(self.answers) - 1)]
        self.timeouts.append(timeout)
        if isinstance(answer, asyncio.Event):
            await answer.wait()
        elif answer == HANG:
            await asyncio.sleep(3600)
        elif isinstance(answer, BaseException):
            raise answer


def answers(*values: Answer) -> FakeRpc:
    """A :class:`FakeRpc` giving ``values`` in turn."""
    return FakeRpc(list(values))


def new_record(
    *,
    target: str = "agent",
    started_at: float = T0,
    deadline: float | None = None,
    attempt: int = 1,
    workflow_id: str | None = None,
    activity_id: str = "1",
) -> HandoffRecord:
    """A pending handoff as the recorder builds it (not stored yet)."""
    token = secrets.token_bytes(48)
    return HandoffRecord(
        handoff_id=new_handoff_id(),
        task_token=token,
        token_fingerprint=token_fingerprint(token),
        namespace="default",
        workflow_id=workflow_id or f"wf-{secrets.token_hex(4)}",
        run_id="run-1",
        activity_id=activity_id,
        activity_type="hand_off",
        attempt=attempt,
        target=target,
        started_at=started_at,
        deadline=deadline,
    )


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value (0 when the series does not exist)."""
    return registry.get_sample_value(name, labels) or 0.0


def finished(registry: CollectorRegistry, outcome: str, target: str = "agent") -> float:
    return sample(registry, "handshake_handoffs_finished_total", target=target, outcome=outcome)


def errors(registry: CollectorRegistry, error_type: str, target: str = "agent") -> float:
    return sample(
        registry, "handshake_completion_errors_total", target=target, error_type=error_type
    )


def rpcs(registry: CollectorRegistry, operation: str) -> float:
    return sample(registry, "handshake_completion_rpc_duration_seconds_count", operation=operation)


def all_finished(registry: CollectorRegistry) -> float:
    """Outcomes counted, all targets and outcomes together."""
    return sum(
        s.value
        for family in registry.collect()
        if family.name == "handshake_handoffs_finished"
        for s in family.samples
        if s.name == "handshake_handoffs_finished_total"
    )


def all_errors(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Completion errors counted, by (target, error type), the non-zero ones."""
    return {
        (s.labels["target"], s.labels["error_type"]): s.value
        for family in registry.collect()
        if family.name == "handshake_completion_errors"
        for s in family.samples
        if s.name == "handshake_completion_errors_total" and s.value
    }
