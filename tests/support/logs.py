"""Reading what handshake-obs logged during a test."""

from __future__ import annotations

import io

from handshake_obs import flush_logs


def flushed_logs(stream: io.StringIO) -> str:
    """What was logged to ``stream``, once every queued line is written."""
    flush_logs()
    return stream.getvalue()
