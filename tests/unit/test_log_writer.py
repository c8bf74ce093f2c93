"""The log path: our lines and foreign records through one writer thread, in order, at level."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator

import pytest
import structlog
from structlog.typing import EventDict

from handshake_obs import configure_logging, flush_logs
from handshake_obs.telemetry._log_writer import LogWriter

from ..support.logs import logging_to_stream


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What is logged at INFO as JSON lines; the logging setup is restored after."""
    with logging_to_stream(logging.INFO) as stream:
        yield stream


def logged(stream: io.StringIO) -> list[dict[str, object]]:
    flush_logs()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_own_lines_and_foreign_records_keep_their_order_level_and_fields(
    lines: io.StringIO,
) -> None:
    ours = structlog.get_logger("handshake_obs.test")
    foreign = logging.getLogger("temporalio.test")
    for i in range(300):
        ours.info("ours", i=i)
        foreign.info("foreign %d", i)
        ours.debug("below the level", i=i)
        foreign.debug("below the level %d", i)
    entries = logged(lines)
    assert [e["event"] for e in entries[:4]] == ["ours", "foreign 0", "ours", "foreign 1"]
    assert len(entries) == 600
    first = entries[0]
    assert first["logger"] == "handshake_obs.test"
    assert first["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", str(first["timestamp"]))
    assert entries[1]["logger"] == "temporalio.test"


def test_a_logger_used_before_reconfiguring_follows_the_new_stream_and_level(
    lines: io.StringIO,
) -> None:
    log = structlog.get_logger("handshake_obs.test")
    log.debug("dropped at info")
    log.info("to the first stream")
    assert [e["event"] for e in logged(lines)] == ["to the first stream"]
    second = io.StringIO()
    configure_logging(json=True, level=logging.DEBUG, stream=second)
    log.debug("kept at debug")
    assert [e["event"] for e in logged(second)] == ["kept at debug"]
    assert [e["event"] for e in logged(lines)] == ["to the first stream"]


def test_an_exception_being_handled_is_rendered_as_text_with_the_line(lines: io.StringIO) -> None:
    try:
        int("the reason")
    except ValueError:
        structlog.get_logger("handshake_obs.test").exception("it failed")
    (entry,) = logged(lines)
    assert entry["level"] == "error"
    assert "ValueError: invalid literal for int()" in str(entry["exception"])


def test_a_line_that_cannot_be_rendered_is_reported_and_the_next_ones_are_written() -> None:
    stream = io.StringIO()

    def render(event_dict: EventDict) -> str:
        if event_dict.get("bad"):
            raise TypeError("a value the renderer cannot take: secret-ish text")
        return str(event_dict["event"])

    writer = LogWriter(
        stream, render_line=render, format_record=lambda r: r.getMessage(), scrub=str.upper
    )
    try:
        writer.put_line({"event": "before"})
        writer.put_line({"event": "x", "bad": True})
        writer.put_line({"event": "after"})
        writer.flush()
    finally:
        writer.stop()
    assert stream.getvalue().splitlines() == [
        "BEFORE",
        "log line could not be rendered: TypeError",
        "AFTER",
    ]


def test_flush_returns_once_every_line_queued_before_it_is_written() -> None:
    release = threading.Event()
    stream = io.StringIO()

    def slow(event_dict: EventDict) -> str:
        release.wait(5)
        return str(event_dict["event"])

    writer = LogWriter(stream, render_line=slow, format_record=str, scrub=str)
    try:
        for i in range(5):
            writer.put_line({"event": f"line {i}"})
        threading.Timer(0.2, release.set).start()
        writer.flush()
        assert stream.getvalue().splitlines() == [f"line {i}" for i in range(5)]
    finally:
        writer.stop()
