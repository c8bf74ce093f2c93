"""The local stack (``handshake-obs dev``) and the Temporal dev server that runs it."""

from ._devserver import STARTUP_TIMEOUT, start_dev_server, temporal_cli_path

__all__ = ["STARTUP_TIMEOUT", "start_dev_server", "temporal_cli_path"]
