"""The ``handshake-obs`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import REGISTRY, disable_created_metrics

from ._config import HandshakeConfig
from ._errors import HandshakeError
from ._logging import configure_logging
from ._reap_command import run_reap
from .demo._dev import DevOptions, run_dev
from .sidecar import load_settings, run_sidecar


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

    dev = commands.add_parser("dev", help="run the local stack with demo traffic")
    defaults = DevOptions()
    dev.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    dev.add_argument("--temporal-port", type=int, default=defaults.temporal_port)
    dev.add_argument("--temporal-ui-port", type=int, default=defaults.temporal_ui_port)
    dev.add_argument("--metrics-port", type=int, default=defaults.metrics_port)
    dev.add_argument("--sdk-metrics-port", type=int, default=defaults.sdk_metrics_port)
    dev.add_argument(
        "--rate",
        type=float,
        default=defaults.workflows_per_second,
        help="demo workflows started per second",
    )
    dev.add_argument(
        "--activity-timeout",
        type=float,
        default=defaults.activity_timeout_seconds,
        help="start-to-close timeout of demo activities, seconds",
    )
    dev.add_argument("--seed", type=int, default=None)

    serve = commands.add_parser(
        "serve",
        help="run the sidecar: API, status page, worker, reaper, /metrics (HANDSHAKE_*)",
    )
    serve.add_argument("--ledger-url", help="overrides HANDSHAKE_LEDGER_URL")

    reap = commands.add_parser("reap", help="fail handoffs past their deadline")
    reap.add_argument("--once", action="store_true", help="one scan, print a table, exit")
    reap.add_argument("--ledger-url", help="overrides HANDSHAKE_LEDGER_URL")
    reap.add_argument("--temporal-address", help="overrides HANDSHAKE_TEMPORAL_ADDRESS")

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
        asyncio.run(run_sidecar(config, settings, registry=REGISTRY))
        return 0
    if args.command == "reap":
        return asyncio.run(run_reap(_config_from(args), once=args.once))
    if args.command == "dev":
        asyncio.run(
            run_dev(
                DevOptions(
                    state_dir=args.state_dir,
                    temporal_port=args.temporal_port,
                    temporal_ui_port=args.temporal_ui_port,
                    metrics_port=args.metrics_port,
                    sdk_metrics_port=args.sdk_metrics_port,
                    workflows_per_second=args.rate,
                    activity_timeout_seconds=args.activity_timeout,
                    seed=args.seed,
                )
            )
        )
    return 0
