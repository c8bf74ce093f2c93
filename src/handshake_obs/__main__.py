"""``python -m handshake_obs``: the same as the ``handshake-obs`` command."""

import sys

# Before anything heavier is imported: a SIGTERM/SIGINT during start-up is a clean stop
# (main() releases them again for the short commands).
from ._stop_signals import catch_stop_signals

catch_stop_signals()

from .cli import main  # noqa: E402 - after the signals are caught

sys.exit(main())
