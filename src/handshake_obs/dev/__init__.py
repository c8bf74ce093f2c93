"""The local stack (``handshake-obs dev``) and the Temporal dev server that runs it."""

from ._devserver import temporal_cli_path

__all__ = ["temporal_cli_path"]
