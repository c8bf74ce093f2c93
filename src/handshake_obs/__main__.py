"""``python -m handshake_obs``: the same as the ``handshake-obs`` command."""

import sys

from ._cli import main

sys.exit(main())
