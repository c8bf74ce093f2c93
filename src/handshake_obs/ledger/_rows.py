"""How a handoff is laid out as a row, shared by the SQLite and PostgreSQL ledgers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._records import HandoffEvent, HandoffRecord, PendingSummary
from .._vocabulary import HandoffEventKind, Outcome, State
from ._age_buckets import age_bucket_labels
from ._token_cipher import TokenCipher, no_key_for

#: Columns of ``handoffs`` in the order :meth:`RowCodec.params` gives them.
HANDOFF_COLUMNS: tuple[str, ...] = (
    "handoff_id",
    "task_token",
    "token_key_id",
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
    "activity_run_id",
    "scheduled_at",
    "attempt_started_at",
    "schedule_to_close_timeout",
    "start_to_close_timeout",
    "heartbeat_timeout",
)

_RECORD_COLUMN_NAMES = tuple(c for c in HANDOFF_COLUMNS if c != "token_digest")

#: The columns a :class:`HandoffRecord` is read from (the digest is for lookups only).
RECORD_COLUMNS = ", ".join(_RECORD_COLUMN_NAMES)


class RowCodec:
    """How a record becomes a row and back: the token encrypted at rest when the ledger has
    a :class:`TokenCipher`, stored as given when not (see ``_token_cipher``)."""

    __slots__ = ("_cipher",)

    def __init__(self, cipher: TokenCipher | None = None) -> None:
        self._cipher = cipher

    def params(self, record: HandoffRecord, digest: bytes) -> tuple[Any, ...]:
        """Insert parameters for ``record``, in :data:`HANDOFF_COLUMNS` order."""
        token, key_id = record.task_token, None
        if self._cipher is not None and token:
            token, key_id = self._cipher.encrypt(token, record.handoff_id), self._cipher.current
        return (
            record.handoff_id,
            token,
            key_id,
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
            record.error_message,
            encode_progress(record.progress),
            record.progress_sequence,
            record.progress_at,
            record.traceparent,
            record.tracestate,
            record.activity_run_id,
            record.scheduled_at,
            record.attempt_started_at,
            record.schedule_to_close_timeout,
            record.start_to_close_timeout,
            record.heartbeat_timeout,
        )

    def record(self, row: Sequence[Any]) -> HandoffRecord:
        """A row of :data:`RECORD_COLUMNS` as a record (its token decrypted)."""
        values: Mapping[str, Any] = dict(zip(_RECORD_COLUMN_NAMES, row, strict=True))
        handoff_id: str = values["handoff_id"]
        token = bytes(values["task_token"])
        key_id: str | None = values["token_key_id"]
        if key_id is not None and token:
            if self._cipher is None:
                raise no_key_for(key_id, handoff_id)
            token = self._cipher.decrypt(token, key_id, handoff_id)
        return HandoffRecord(
            handoff_id=handoff_id,
            task_token=token,
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
            activity_run_id=values["activity_run_id"],
            scheduled_at=values["scheduled_at"],
            attempt_started_at=values["attempt_started_at"],
            schedule_to_close_timeout=values["schedule_to_close_timeout"],
            start_to_close_timeout=values["start_to_close_timeout"],
            heartbeat_timeout=values["heartbeat_timeout"],
        )


#: Tokens stored as given (a ledger without token keys).
PLAIN = RowCodec()


def as_read_back(record: HandoffRecord) -> HandoffRecord:
    """``record`` as reading it back after storing it gives it: its progress through its
    JSON form (the only field a row does not keep exactly as given)."""
    if record.progress is None:
        return record
    return dataclasses.replace(record, progress=progress_as_read_back(record.progress))


#: Progress as JSON text, compact, anything not JSON as its string form (one encoder:
#: ``json.dumps`` with arguments builds a new one per call). A circular structure a caller
#: reports is refused with ValueError.
_progress_json = json.JSONEncoder(default=str, separators=(",", ":")).encode


def _details_encoder() -> Callable[[Any], str]:
    """Timeline details as JSON text, as :data:`_progress_json` writes them.

    Every record writes a timeline entry, on the writer whose time bounds the ledger's rate:
    ``encode`` builds its C encoder anew on every call (2.0 µs for a ``recorded`` entry's
    detail), one built once takes 1.2 µs. It checks no circular reference, which the details
    cannot have: the rules build them, their progress from its JSON form
    (``programs.event_progress``)."""
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # no C accelerator (another interpreter)
        return _progress_json
    try:
        chunks = make_encoder(
            None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
        )
    except TypeError:  # a later Python's signature: the stdlib's own path
        return _progress_json
    join = "".join

    def encode(value: Any) -> str:
        return join(chunks(value, 0))

    probe = {"a": [1, 2.5, None, "é"]}
    return encode if encode(probe) == _progress_json(probe) else _progress_json


_details_as_json = _details_encoder()


def progress_as_read_back(progress: Any) -> Any:
    """``progress`` as reading it back after storing it gives it."""
    return decode_progress(encode_progress(progress))


def encode_progress(progress: Any) -> str | None:
    """Progress details as JSON text (anything not JSON becomes its string form)."""
    if progress is None:
        return None
    return _progress_json(progress)


def decode_progress(text: str | None) -> Any:
    """Inverse of :func:`encode_progress`."""
    return None if text is None else json.loads(text)


def summary_from_row(row: Sequence[Any], age_bounds: Sequence[float]) -> PendingSummary:
    """Turn ``target, count, min(started), cumulative bucket counts...`` into a summary
    (bucket ``i`` counting the handoffs started at or after ``now - age_bounds[i]``)."""
    target, total, oldest, *cumulative = row
    cumulative = [int(c or 0) for c in cumulative]
    disjoint = [b - a for a, b in zip([0, *cumulative], [*cumulative, int(total)], strict=True)]
    return PendingSummary(
        target=target,
        pending=int(total),
        oldest_started_at=oldest,
        by_age=dict(zip(age_bucket_labels(age_bounds), disjoint, strict=True)),
    )


def event_params(event: HandoffEvent) -> tuple[str, float, str, str]:
    """The parameters of the timeline insert (``handoff_id, at, kind, detail``)."""
    return (event.handoff_id, event.at, event.kind.value, _details_as_json(event.detail))


def row_to_event(handoff_id: str, row: Sequence[Any]) -> HandoffEvent:
    """A timeline row (``at, kind, detail``) as the event it records."""
    at, kind, detail = row
    return HandoffEvent(handoff_id, float(at), HandoffEventKind(kind), json.loads(detail))
