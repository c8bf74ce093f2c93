"""Structured logs: JSON when not on a terminal, console otherwise, stdlib routed through.

Every handoff and completion line carries the handoff's identity (:func:`handoff_fields`) and
never its task token, at any level and whichever library logs: secret fields and bytes values
are redacted, foreign records' arguments are redacted before their message is formatted, and
the rendered line is scrubbed of every encoding of a known token (:mod:`._redaction`). Lines
logged inside a traced operation carry its ``trace_id`` and ``span_id``
(:func:`add_trace_context`).

Rendering and writing happen on a background thread (a queue between the two), so a log line
costs the event loop only the cheap part: what depends on the caller's context (bound
variables, the current span) is captured before the line is queued. :func:`flush_logs`
waits for what is queued; it runs at exit too.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from .._records import HandoffRecord
from ._redaction import RedactTokenArguments, redact_secrets, scrub_rendered


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


class _ScrubbingFormatter(structlog.stdlib.ProcessorFormatter):
    """Renders a record, then scrubs any known token from the final text (tracebacks too)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_rendered(super().format(record))


class _RecordQueueHandler(QueueHandler):
    """Queues records as they are: the listener's formatter renders them."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class _CallerContext(logging.Filter):
    """Captures, on the logging thread, what the rendering thread cannot see."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, dict):  # a stdlib record (temporalio, grpc, ...)
            context = dict(structlog.contextvars.get_contextvars())
            add_trace_context(None, "", context)
            record.handshake_context = context
        return True


def _caller_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    for key, value in getattr(record, "handshake_context", {}).items():
        event_dict.setdefault(key, value)
    return event_dict


_listener: QueueListener | None = None


def flush_logs() -> None:
    """Wait until every queued log line is written."""
    if _listener is not None:
        _listener.stop()  # drains the queue
        _listener.start()


def _stop_listener() -> None:
    global _listener  # noqa: PLW0603 - the one listener of the process
    if _listener is not None:
        _listener.stop()
        _listener = None


atexit.register(_stop_listener)


def configure_logging(
    *, json: bool | None = None, level: int | str = logging.INFO, stream: TextIO | None = None
) -> None:
    """Configure structlog and route stdlib logging (temporalio, grpc) through it.

    Lines go to ``stream`` (default: stderr). ``json`` None picks JSON unless the stream is
    a terminal.
    """
    stream = sys.stderr if stream is None else stream
    render_json = (not stream.isatty()) if json is None else json
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        redact_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if render_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = _ScrubbingFormatter(
        # Runs on the rendering thread: the caller's context was captured by _CallerContext.
        foreign_pre_chain=[
            _caller_context,
            *shared[1:4],
            redact_secrets,
            # A foreign record's traceback as text (scrubbed with the line), not a tuple repr.
            structlog.processors.format_exc_info,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    writer = logging.StreamHandler(stream)
    writer.setFormatter(formatter)
    global _listener  # noqa: PLW0603 - the one listener of the process
    _stop_listener()
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = _RecordQueueHandler(lines)
    # Before the record is queued: its arguments are formatted on the rendering thread.
    handler.addFilter(RedactTokenArguments())
    handler.addFilter(_CallerContext())
    _listener = QueueListener(lines, writer)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
