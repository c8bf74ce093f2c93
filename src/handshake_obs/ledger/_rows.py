"""SQL and row mapping shared by the SQLite and PostgreSQL ledgers.

Both speak the same schema; each backend only adapts placeholders, types and locking.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._records import HandoffRecord, PendingSummary
from .._vocabulary import Outcome, State
from ._interface import HandoffQuery, age_bucket_labels

#: Columns of ``handoffs`` in the order :func:`record_params` gives them.
HANDOFF_COLUMNS: tuple[str, ...] = (
    "handoff_id",
    "task_token",
    "token_digest",
    "token_fingerprint",
    "namespace",
    "workflow_id",
    "run_id",
    "activity_id",
    "activity_type",
    "attempt",
    "target",
    "started_at",
    "deadline",
    "state",
    "outcome",
    "finished_at",
    "error_type",
    "error_message",
    "progress",
    "progress_sequence",
    "progress_at",
    "traceparent",
    "tracestate",
)

#: The columns a :class:`HandoffRecord` is read from (the digest is for lookups only).
RECORD_COLUMNS = ", ".join(c for c in HANDOFF_COLUMNS if c != "token_digest")

SELECT_HANDOFF = f"SELECT {RECORD_COLUMNS} FROM handoffs"

#: Longest error message kept (a stack trace pasted by an external system stays readable).
MAX_ERROR_MESSAGE = 4096


def record_params(record: HandoffRecord, digest: bytes) -> tuple[Any, ...]:
    """Insert parameters for ``record``, in :data:`HANDOFF_COLUMNS` order."""
    return (
        record.handoff_id,
        record.task_token,
        digest,
        record.token_fingerprint,
        record.namespace,
        record.workflow_id,
        record.run_id,
        record.activity_id,
        record.activity_type,
        record.attempt,
        record.target,
        record.started_at,
        record.deadline,
        record.state.value,
        record.outcome.value if record.outcome else None,
        record.finished_at,
        record.error_type,
        truncate_message(record.error_message),
        encode_progress(record.progress),
        record.progress_sequence,
        record.progress_at,
        record.traceparent,
        record.tracestate,
    )


def row_to_record(row: Sequence[Any]) -> HandoffRecord:
    """A row selected by :data:`SELECT_HANDOFF` as a record."""
    values: Mapping[str, Any] = dict(
        zip((c for c in HANDOFF_COLUMNS if c != "token_digest"), row, strict=True)
    )
    return HandoffRecord(
        handoff_id=values["handoff_id"],
        task_token=bytes(values["task_token"]),
        token_fingerprint=values["token_fingerprint"],
        namespace=values["namespace"],
        workflow_id=values["workflow_id"],
        run_id=values["run_id"],
        activity_id=values["activity_id"],
        activity_type=values["activity_type"],
        attempt=values["attempt"],
        target=values["target"],
        started_at=values["started_at"],
        deadline=values["deadline"],
        state=State(values["state"]),
        outcome=Outcome(values["outcome"]) if values["outcome"] else None,
        finished_at=values["finished_at"],
        error_type=values["error_type"],
        error_message=values["error_message"],
        progress=decode_progress(values["progress"]),
        progress_sequence=values["progress_sequence"],
        progress_at=values["progress_at"],
        traceparent=values["traceparent"],
        tracestate=values["tracestate"],
    )


def encode_progress(progress: Any) -> str | None:
    """Progress details as JSON text (anything not JSON becomes its string form)."""
    if progress is None:
        return None
    return json.dumps(progress, default=str, separators=(",", ":"))


def decode_progress(text: str | None) -> Any:
    """Inverse of :func:`encode_progress`."""
    return None if text is None else json.loads(text)


def truncate_message(message: str | None) -> str | None:
    """Error messages are kept to :data:`MAX_ERROR_MESSAGE` characters."""
    if message is None or len(message) <= MAX_ERROR_MESSAGE:
        return message
    return message[: MAX_ERROR_MESSAGE - 1] + "…"


def summary_from_row(row: Sequence[Any], age_bounds: Sequence[float]) -> PendingSummary:
    """Turn ``target, count, min(started), cumulative bucket counts...`` into a summary."""
    target, total, oldest, *cumulative = row
    cumulative = [int(c or 0) for c in cumulative]
    disjoint = [b - a for a, b in zip([0, *cumulative], [*cumulative, int(total)], strict=True)]
    return PendingSummary(
        target=target,
        pending=int(total),
        oldest_started_at=oldest,
        by_age=dict(zip(age_bucket_labels(age_bounds), disjoint, strict=True)),
    )


def list_query(table: str, query: HandoffQuery, placeholder: str) -> tuple[str, tuple[Any, ...]]:
    """SQL and parameters of an inventory page, in either backend's placeholder style."""
    conditions: list[str] = []
    params: list[Any] = []
    if query.state is not None:
        conditions.append(f"state = {placeholder}")
        params.append(query.state.value)
    if query.target is not None:
        conditions.append(f"target = {placeholder}")
        params.append(query.target)
    if query.started_before is not None:
        conditions.append(f"started_at <= {placeholder}")
        params.append(query.started_before)
    if query.after is not None:
        conditions.append(f"(started_at, handoff_id) > ({placeholder}, {placeholder})")
        params.extend(query.after)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT {RECORD_COLUMNS} FROM {table}{where} "
        f"ORDER BY started_at, handoff_id LIMIT {placeholder}"
    )
    return sql, (*params, query.limit)


def outcomes_since_query(table: str, placeholder: str) -> str:
    """Finished handoffs since a time, by target, outcome and error type."""
    return (
        f"SELECT target, outcome, error_type, COUNT(*) FROM {table} "
        f"WHERE state = 'finished' AND finished_at >= {placeholder} "
        "GROUP BY target, outcome, error_type"
    )
