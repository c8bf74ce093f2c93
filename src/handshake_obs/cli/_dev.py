"""The ``handshake-obs dev`` command line."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from ..dev._stack import DevOptions, run_dev


def add_dev_command(commands: Any) -> None:
    """Add ``dev`` to the subcommands."""
    dev = commands.add_parser(
        "dev", help="run the local stack with demo traffic (Ctrl-C stops everything)"
    )
    defaults = DevOptions()
    dev.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    dev.add_argument("--temporal-port", type=int, default=defaults.temporal_port)
    dev.add_argument("--temporal-ui-port", type=int, default=defaults.temporal_ui_port)
    dev.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help="the sidecar's port: status page, API and /metrics",
    )
    dev.add_argument("--sdk-metrics-port", type=int, default=defaults.sdk_metrics_port)
    dev.add_argument("--demo-port", type=int, default=defaults.demo_port)
    dev.add_argument("--prometheus-port", type=int, default=defaults.prometheus_port)
    dev.add_argument("--alertmanager-port", type=int, default=defaults.alertmanager_port)
    dev.add_argument(
        "--no-prometheus",
        action="store_true",
        help="do not start Prometheus and Alertmanager even when installed",
    )
    dev.add_argument("--rules-dir", type=Path, default=defaults.rules_dir)
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


def run_dev_command(args: argparse.Namespace) -> int:
    """Run ``dev`` with parsed arguments."""
    asyncio.run(
        run_dev(
            DevOptions(
                state_dir=args.state_dir,
                temporal_port=args.temporal_port,
                temporal_ui_port=args.temporal_ui_port,
                metrics_port=args.metrics_port,
                sdk_metrics_port=args.sdk_metrics_port,
                demo_port=args.demo_port,
                prometheus_port=args.prometheus_port,
                alertmanager_port=args.alertmanager_port,
                with_prometheus=not args.no_prometheus,
                rules_dir=args.rules_dir,
                workflows_per_second=args.rate,
                activity_timeout_seconds=args.activity_timeout,
                seed=args.seed,
            )
        )
    )
    return 0
