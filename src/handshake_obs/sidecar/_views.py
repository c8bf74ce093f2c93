"""Turning ledger records into what the API and the page show (never the token)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from .._records import HandoffRecord
from .._vocabulary import Outcome
from ..config import SidecarSettings
from ._schemas import HandoffView, Links


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (None if absent or malformed)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or set(parts[1]) == {"0"}:
        return None
    return parts[1]


def links_of(record: HandoffRecord, settings: SidecarSettings) -> Links:
    """Temporal UI and trace links of a handoff."""
    ui = settings.temporal_ui_url.rstrip("/")
    workflow = (
        f"{ui}/namespaces/{quote(record.namespace, safe='')}/workflows/"
        f"{quote(record.workflow_id, safe='')}/{quote(record.run_id, safe='')}/history"
    )
    trace_id = trace_id_of(record.traceparent)
    trace = settings.trace_url_template.format(trace_id=trace_id) if trace_id else None
    return Links(temporal_ui=workflow, trace=trace)


def view_of(record: HandoffRecord, settings: SidecarSettings, *, now: float) -> HandoffView:
    """The API view of a record."""
    end = record.finished_at if record.finished_at is not None else now
    return HandoffView(
        handoff_id=record.handoff_id,
        token_fingerprint=record.token_fingerprint,
        namespace=record.namespace,
        workflow_id=record.workflow_id,
        run_id=record.run_id,
        activity_id=record.activity_id,
        activity_type=record.activity_type,
        attempt=record.attempt,
        target=record.target,
        state=record.state.value,
        outcome=record.outcome.value if record.outcome else None,
        started_at=_time(record.started_at),
        deadline=_time(record.deadline) if record.deadline is not None else None,
        finished_at=_time(record.finished_at) if record.finished_at is not None else None,
        age_seconds=round(max(0.0, end - record.started_at), 3),
        error_type=record.error_type,
        error_message=record.error_message,
        close_reason=record.error_type if record.outcome is Outcome.ALREADY_CLOSED else None,
        temporal_closes_at=(
            _time(record.temporal_closes_at) if record.temporal_closes_at is not None else None
        ),
        activity_run_id=record.activity_run_id,
        progress=record.progress,
        progress_sequence=record.progress_sequence,
        traceparent=record.traceparent,
        links=links_of(record, settings),
    )


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
