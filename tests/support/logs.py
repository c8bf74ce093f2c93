"""Reading what handshake-obs logged during a test."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import structlog

from handshake_obs import configure_logging, flush_logs


@contextlib.contextmanager
def logging_to_stream(level: int) -> Iterator[io.StringIO]:
    """Everything logged at ``level`` or above meanwhile, as JSON lines; the logging setup
    is restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(json=True, level=level, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.reset_defaults()


def flushed_logs(stream: io.StringIO) -> str:
    """What was logged to ``stream``, once every queued line is written."""
    flush_logs()
    return stream.getvalue()
