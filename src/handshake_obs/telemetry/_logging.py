"""Structured logs: JSON when not on a terminal, console otherwise, stdlib routed through.

Every handoff and completion line carries the handoff's identity (:func:`handoff_fields`) and
never its task token, at any level and whichever library logs: secret fields and bytes values
are redacted, foreign records' arguments are redacted before their message is formatted, and
the rendered line is scrubbed of every encoding of a known token (:mod:`._redaction`). Lines
logged inside a traced operation carry its ``trace_id`` and ``span_id``
(:func:`add_trace_context`).

Rendering and writing happen on a background thread (:mod:`._log_writer`), so a line costs
its caller only the cheap part: our own lines skip the stdlib ``LogRecord`` path (a level
check, the caller's context, the time, onto the queue), and what depends on the caller's
context (bound variables, the current span, the exception being handled) is captured before
the line is queued. :func:`flush_logs` waits for what is queued; it runs at exit too.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import sys
import time
from logging.handlers import QueueHandler
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from .._records import HandoffRecord
from ._log_writer import LogWriter
from ._redaction import RedactTokenArguments, redact_secrets, scrub_rendered

#: The level of each structlog logger method.
_METHOD_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "err": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def handoff_fields(record: HandoffRecord) -> dict[str, Any]:
    """The fields that identify a handoff in every log line about it."""
    return {
        "handoff_id": record.handoff_id,
        "workflow_id": record.workflow_id,
        "run_id": record.run_id,
        "activity_id": record.activity_id,
        "attempt": record.attempt,
        "target": record.target,
        "token_fingerprint": record.token_fingerprint,
    }


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` and ``span_id`` of the current span, when there is a valid one."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(span_context.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(span_context.span_id))
    return event_dict


class _RecordQueueHandler(QueueHandler):
    """Queues records as they are: the writer thread formats them."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class _CallerContext(logging.Filter):
    """Captures, on the logging thread, what the rendering thread cannot see."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = dict(structlog.contextvars.get_contextvars())
        add_trace_context(None, "", context)
        record.handshake_context = context
        return True


def _caller_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    for key, value in getattr(record, "handshake_context", {}).items():
        event_dict.setdefault(key, value)
    return event_dict


#: The level our own lines are kept from (stdlib records: the root logger's level).
_threshold = logging.INFO
#: Where lines go; None until :func:`configure_logging`.
_writer: LogWriter | None = None
#: The key that carries a line's time (seconds) from its caller to the writer thread.
_LOGGED_AT = "_logged_at"


def _at_level(_: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Drop a line below the configured level (first, so a dropped line costs little)."""
    if _METHOD_LEVELS.get(method_name, logging.INFO) < _threshold:
        raise structlog.DropEvent
    return event_dict


def _stamp_time(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict[_LOGGED_AT] = time.time()
    return event_dict


def _iso_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The caller's time as ISO 8601 UTC, as ``TimeStamper(fmt="iso", utc=True)`` writes it."""
    at = event_dict.pop(_LOGGED_AT, None)
    if at is not None:
        stamp = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
        event_dict["timestamp"] = stamp.isoformat().replace("+00:00", "Z")
    return event_dict


def _to_writer(
    _: WrappedLogger, __: str, event_dict: EventDict
) -> tuple[tuple[Any], dict[str, Any]]:
    """The last processor: the event dict is the logger method's one argument."""
    return (event_dict,), {}


class QueuedLogger:
    """structlog's logger for our lines: each goes onto the writer thread's queue as is."""

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name or "root"

    def _queue(self, event_dict: EventDict) -> None:
        writer = _writer
        if writer is not None:
            writer.put_line(event_dict)

    debug = info = warning = warn = error = err = exception = critical = fatal = msg = _queue


def _queued_logger(*args: Any) -> QueuedLogger:
    return QueuedLogger(str(args[0]) if args and args[0] is not None else None)


def flush_logs() -> None:
    """Wait until every queued log line is written."""
    if _writer is not None:
        _writer.flush()


def _stop_writer() -> None:
    global _writer  # noqa: PLW0603 - the one writer of the process
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(_stop_writer)


def configure_logging(
    *, json: bool | None = None, level: int | str = logging.INFO, stream: TextIO | None = None
) -> None:
    """Configure structlog and route stdlib logging (temporalio, grpc) through it.

    Lines go to ``stream`` (default: stderr). ``json`` None picks JSON unless the stream is
    a terminal.
    """
    stream = sys.stderr if stream is None else stream
    render_json = (not stream.isatty()) if json is None else json
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if render_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            _at_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            _stamp_time,
            add_trace_context,
            # The traceback of the exception being handled: only this thread still has it.
            structlog.processors.format_exc_info,
            _to_writer,
        ],
        logger_factory=_queued_logger,
        cache_logger_on_first_use=True,
    )
    # On the writer thread: what the caller captured is complete, the rest is rendering.
    line_processors: list[Processor] = [_iso_timestamp, redact_secrets, renderer]
    record_formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _caller_context,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            # A foreign record's traceback as text (scrubbed with the line), not a tuple repr.
            structlog.processors.format_exc_info,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )

    def render_line(event_dict: EventDict) -> str:
        rendered: Any = event_dict
        for processor in line_processors:
            rendered = processor(None, "", rendered)
        return str(rendered)

    global _writer, _threshold  # noqa: PLW0603 - the one writer and level of the process
    _stop_writer()
    _threshold = level if isinstance(level, int) else logging.getLevelNamesMapping()[level.upper()]
    _writer = LogWriter(
        stream, render_line=render_line, format_record=record_formatter.format, scrub=scrub_rendered
    )
    handler = _RecordQueueHandler(_writer.records)
    # Before the record is queued: its arguments are formatted on the writer thread.
    handler.addFilter(RedactTokenArguments())
    handler.addFilter(_CallerContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_threshold)
