"""``handshake-obs``: parse the command line, read the settings, set up logging, run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from .._errors import HandshakeError
from .._stop_signals import catch_stop_signals, release_stop_signals
from ._exit import exit_now
from ._parser import LONG_RUNNING_COMMANDS, build_parser, command, setting_arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    # First, before the command is known: a signal during start-up is a clean stop too.
    catch_stop_signals()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        release_stop_signals()
        raise
    long_running = args.command in LONG_RUNNING_COMMANDS and not getattr(args, "once", False)
    if not long_running:
        release_stop_signals()
    try:
        code = _run(args)
    finally:
        if long_running:
            catch_stop_signals()  # the loop's handlers are gone: a late signal is a no-op
    if long_running:
        exit_now(code)  # not through interpreter finalization: see cli/_exit.py
    return code


def _run(args: argparse.Namespace) -> int:
    # Imported once the command line is parsed: --help and --version need none of these.
    from prometheus_client import disable_created_metrics  # noqa: PLC0415

    from ..config import read_settings  # noqa: PLC0415
    from ..telemetry._logging import configure_logging  # noqa: PLC0415

    try:
        settings = read_settings(**setting_arguments(args))
        level = getattr(logging, settings.log_level.upper())
        configure_logging(json=settings.log_json, level=level)
        # Our own deprecations (a renamed variable) reach the operator as a log line once.
        warnings.filterwarnings("default", category=DeprecationWarning, module="handshake_obs")
        logging.captureWarnings(True)
        # ``*_created`` series double the exposition and no rule or dashboard reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        return command(args.command)(args, settings)
    except BrokenPipeError:
        # The reader went away (``pending --json | head``): what it wanted it has. Later
        # writes (the interpreter's own flush at exit) go nowhere instead of a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except HandshakeError as err:
        sys.stderr.write(f"handshake-obs: {err}\n")
        return 2
