"""New pending handoff records, built as the recorder builds them, for tests."""

from __future__ import annotations

import secrets
import time
import uuid

from .._records import HandoffRecord
from .._tokens import new_handoff_id, token_fingerprint

#: Length of the random task token: that of a real Temporal task token.
TASK_TOKEN_BYTES = 106


def pending_record(
    *,
    target: str = "default",
    namespace: str = "default",
    workflow_id: str | None = None,
    run_id: str | None = None,
    activity_id: str = "1",
    activity_type: str = "hand_off",
    attempt: int = 1,
    started_at: float | None = None,
    deadline: float | None = None,
    task_token: bytes | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> HandoffRecord:
    """A new pending handoff: ``task_token`` (default: 106 random bytes) with its
    fingerprint, a fresh unguessable handoff id, ``workflow_id`` and ``run_id`` unique unless
    given, started at ``started_at`` (default: now), due at ``deadline`` (None: no deadline).

    The fingerprint and handoff id come from the same code the recorder uses, so a record
    built here is one the ledger and the views treat as real.
    """
    if task_token is not None and not task_token:
        raise ValueError("task_token must not be empty")
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, not {attempt}")
    token = secrets.token_bytes(TASK_TOKEN_BYTES) if task_token is None else task_token
    return HandoffRecord(
        handoff_id=new_handoff_id(),
        task_token=token,
        token_fingerprint=token_fingerprint(token),
        namespace=namespace,
        workflow_id=workflow_id if workflow_id is not None else f"wf-{uuid.uuid4()}",
        run_id=run_id if run_id is not None else str(uuid.uuid4()),
        activity_id=activity_id,
        activity_type=activity_type,
        attempt=attempt,
        target=target,
        started_at=time.time() if started_at is None else started_at,
        deadline=deadline,
        traceparent=traceparent,
        tracestate=tracestate,
    )
