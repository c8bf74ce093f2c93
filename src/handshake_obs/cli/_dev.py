"""``handshake-obs dev``: the local stack, from the parsed options and the settings."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import fields

from ..config import Settings
from ..dev._stack import DevOptions, run_dev


def dev_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the stack until SIGINT/SIGTERM; options left out keep DevOptions' defaults."""
    given = {
        f.name: value for f in fields(DevOptions) if (value := getattr(args, f.name)) is not None
    }
    asyncio.run(run_dev(DevOptions(**given), settings=settings))
    return 0
