"""The levels a handshake-obs command can be told to log at (``--log-level``)."""

from __future__ import annotations

from typing import Final

#: Least severe first; each names the stdlib level of the same name.
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
#: The level when neither ``--log-level`` nor a setting says otherwise.
DEFAULT_LOG_LEVEL: Final = "info"
