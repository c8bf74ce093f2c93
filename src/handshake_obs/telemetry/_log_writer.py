"""The one thread that renders and writes log lines, so a line costs its caller little.

Two kinds of line share one queue, so they are written in the order they were logged:

* our own lines, as structlog event dicts (:class:`QueuedLogger` puts them there: no stdlib
  ``LogRecord``, no caller lookup, no handler chain on the caller's thread);
* foreign stdlib records (temporalio, grpc), queued by a stdlib handler.

The thread wakes once for whatever queued meanwhile and writes it in one call: on a busy
worker a line costs one wake-up only when the thread was idle. Every rendered line goes
through ``scrub`` before it is written (see :mod:`._redaction`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TextIO

from structlog.typing import EventDict

#: Longest a :meth:`LogWriter.flush` waits for the thread to write what was queued before it.
FLUSH_TIMEOUT_SECONDS = 10.0
#: Most lines rendered into one write: a burst is written in bounded pieces.
MAX_LINES_PER_WRITE = 512

#: An event dict to render.
RenderLine = Callable[[EventDict], str]
#: A foreign stdlib record to render.
FormatRecord = Callable[[logging.LogRecord], str]


class _Flushed:
    """A marker: the thread sets ``done`` once every line queued before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


class _Stop:
    """A marker: the thread writes what was queued before it, then ends."""


_Item = EventDict | logging.LogRecord | _Flushed | _Stop


class LogWriter:
    """Renders queued lines on a thread of its own and writes them to ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        render_line: RenderLine,
        format_record: FormatRecord,
        scrub: Callable[[str], str],
    ) -> None:
        self._stream = stream
        self._render_line = render_line
        self._format_record = format_record
        self._scrub = scrub
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="handshake-log-writer", daemon=True)
        self._thread.start()

    @property
    def records(self) -> queue.SimpleQueue[Any]:
        """The queue a stdlib ``QueueHandler`` puts foreign records on."""
        return self._queue

    def put_line(self, event_dict: EventDict) -> None:
        """Queue one of our own lines (an event dict the caller no longer touches)."""
        self._queue.put(event_dict)

    def flush(self) -> None:
        """Wait until every line queued so far is written (bounded: a stuck stream does not
        hang the caller for ever)."""
        if not self._thread.is_alive():
            return
        marker = _Flushed()
        self._queue.put(marker)
        marker.done.wait(FLUSH_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(_Stop())
            self._thread.join(FLUSH_TIMEOUT_SECONDS)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_LINES_PER_WRITE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not self._write(batch):
                return

    def _write(self, batch: list[_Item]) -> bool:
        """Write ``batch``; False once a stop marker was met (lines after it are dropped: no
        one logs after stopping the writer)."""
        lines: list[str] = []
        flushed: list[_Flushed] = []
        keep_running = True
        for item in batch:
            if isinstance(item, _Flushed):
                flushed.append(item)
            elif isinstance(item, _Stop):
                keep_running = False
                break
            else:
                lines.append(self._rendered(item))
        if lines:
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: nothing to tell it
                pass
        for marker in flushed:
            marker.done.set()
        return keep_running

    def _rendered(self, item: EventDict | logging.LogRecord) -> str:
        try:
            if isinstance(item, logging.LogRecord):
                text = self._format_record(item)
            else:
                text = self._render_line(item)
            return self._scrub(text) + "\n"
        except Exception as err:  # noqa: BLE001 - one bad line must not stop the others
            # Only the failure's type: its message could quote the line's values.
            return f"log line could not be rendered: {type(err).__name__}\n"
