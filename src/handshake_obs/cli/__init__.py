"""The ``handshake-obs`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from prometheus_client import REGISTRY, disable_created_metrics

from .._errors import HandshakeError
from ..config import HandshakeConfig
from ..sidecar import load_settings, run_sidecar
from ..telemetry._logging import configure_logging
from ..telemetry._otlp import configure_tracing, shutdown_tracing
from ._dev import add_dev_command, run_dev_command
from ._inventory import INVENTORY_COMMANDS, add_inventory_commands, run_inventory_command
from ._reap import run_reap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(
        prog="handshake-obs",
        description="Observability for Temporal's asynchronous activity completion.",
    )
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="JSON logs (default: JSON unless stderr is a terminal)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    add_dev_command(commands)

    serve = commands.add_parser(
        "serve",
        help="run the sidecar: API, status page, worker, reaper, /metrics (HANDSHAKE_*)",
    )
    serve.add_argument("--ledger-url", help="overrides HANDSHAKE_LEDGER_URL")

    reap = commands.add_parser("reap", help="fail handoffs past their deadline")
    reap.add_argument("--once", action="store_true", help="one scan, print a table, exit")
    reap.add_argument("--ledger-url", help="overrides HANDSHAKE_LEDGER_URL")
    reap.add_argument("--temporal-address", help="overrides HANDSHAKE_TEMPORAL_ADDRESS")

    add_inventory_commands(commands)  # pending, show, fail, extend: a sidecar's API

    args = parser.parse_args(argv)
    configure_logging(json=args.log_json)
    # ``*_created`` series double the exposition and no rule or dashboard reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
    try:
        return _dispatch(args)
    except HandshakeError as err:
        sys.stderr.write(f"handshake-obs: {err}\n")
        return 2


def _config_from(args: argparse.Namespace) -> HandshakeConfig:
    overrides = {
        name: value
        for name in ("ledger_url", "temporal_address")
        if (value := getattr(args, name, None))
    }
    return HandshakeConfig.from_env(**overrides)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        overrides = {"ledger_url": args.ledger_url} if args.ledger_url else {}
        config, settings = load_settings(**overrides)
        # OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing otherwise.
        tracer_provider = configure_tracing()
        try:
            asyncio.run(run_sidecar(config, settings, registry=REGISTRY))
        finally:
            if tracer_provider is not None:
                shutdown_tracing(tracer_provider)
        return 0
    if args.command in INVENTORY_COMMANDS:
        return run_inventory_command(args)
    if args.command == "reap":
        return asyncio.run(run_reap(_config_from(args), once=args.once))
    if args.command == "dev":
        return run_dev_command(args)
    return 0
