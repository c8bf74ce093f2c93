"""``python -m handshake_obs``: the same as the ``handshake-obs`` command."""

import sys

from .cli import main

sys.exit(main())
