"""The ``handshake-obs`` command line: one parser, one table of subcommands.

Building the parser imports nothing a command needs to run (no Temporal SDK, web framework,
HTTP client, metrics or pydantic), so ``--help`` and ``--version`` answer at once. Each
subcommand is run by the function :data:`COMMANDS` names, imported only when it runs; it
takes the parsed arguments and the process's :class:`~handshake_obs.config.Settings` and
returns the exit code.

An option that is a setting has the setting's name (``--ledger-url`` is ``ledger_url``), is
listed in :data:`SETTING_OPTIONS`, and wins over the environment and the config file.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .. import __version__
from .._handoff_filter import FILTER_FIELDS
from ..config import DEFAULT_LOG_LEVEL, LOG_LEVELS
from ._time import parse_duration, parse_instant

if TYPE_CHECKING:
    from ..config import Settings

#: What runs a subcommand: the parsed arguments and the settings in, the exit code out.
Command = Callable[[argparse.Namespace, "Settings"], int]

#: Subcommand -> the ``"module:function"`` that runs it.
COMMANDS: Final[Mapping[str, str]] = {
    "serve": "handshake_obs.cli._serve:serve_command",
    "proxy": "handshake_obs.cli._proxy:proxy_command",
    "reap": "handshake_obs.cli._reap:reap_command",
    "reconcile": "handshake_obs.cli._reconcile:reconcile_command",
    "dev": "handshake_obs.cli._dev:dev_command",
    "demo": "handshake_obs.cli._demo:demo_command",
    "pending": "handshake_obs.cli._inventory:pending_command",
    "show": "handshake_obs.cli._inventory:show_command",
    "fail": "handshake_obs.cli._inventory:fail_command",
    "extend": "handshake_obs.cli._inventory:extend_command",
    "export": "handshake_obs.cli._export:export_command",
}

#: Commands that run until SIGTERM/SIGINT (``reap`` unless ``--once``): a signal stops them
#: cleanly from the moment the command line is parsed.
LONG_RUNNING_COMMANDS: Final = ("serve", "dev", "demo", "reap", "reconcile", "proxy")

#: What ``export`` writes (``handshake_obs.artifacts.ARTIFACTS``, and ``all``), and the rule
#: file formats (``RULE_FORMATS``): repeated here so that ``--help`` imports nothing.
EXPORT_ARTIFACTS: Final = ("rules", "dashboards", "runbook", "all")
RULE_FORMATS: Final = ("rules", "prometheusrule")

#: Options that are settings: each one's ``dest`` is the setting's name.
SETTING_OPTIONS: Final = (
    "log_level",
    "log_json",
    "ledger_url",
    "temporal_address",
    "url",
    "inventory_token",
    "operator_token",
    "proxy_listen_address",
    "proxy_metrics_address",
    "proxy_async_activities",
)

#: Handoffs ``pending`` lists unless ``--limit`` says otherwise.
DEFAULT_LIMIT = 100

_SETTINGS_NOTE = (
    "An option marked (setting NAME) overrides the environment variable HANDSHAKE_NAME, "
    "which overrides the key NAME of the TOML file named by HANDSHAKE_CONFIG_FILE. "
    "Every setting: docs/configuration.md."
)
_DURATION_HELP = "90s, 15m, 2h, 1d, 1h30m; a plain number is seconds"


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="handshake-obs",
        description="Observability for Temporal's asynchronous activity completion.",
        epilog=_SETTINGS_NOTE,
    )
    parser.add_argument("--version", action="version", version=f"handshake-obs {__version__}")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help=f"least severe level logged (setting log_level; default: {DEFAULT_LOG_LEVEL})",
    )
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="JSON logs (setting log_json; default: JSON unless stderr is a terminal)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The long-running commands also take --log-level after their name; left out, it keeps
    # what was given before the name (SUPPRESS: a subparser default would overwrite it).
    logging_level = argparse.ArgumentParser(add_help=False)
    logging_level.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="least severe level logged (setting log_level; also before the command)",
    )

    def subcommand(name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, epilog=_SETTINGS_NOTE, **kwargs)

    address = argparse.ArgumentParser(add_help=False)
    address.add_argument(
        "--temporal-address",
        metavar="HOST:PORT",
        help="Temporal frontend (setting temporal_address)",
    )
    temporal = argparse.ArgumentParser(add_help=False, parents=[address])
    temporal.add_argument(
        "--ledger-url", metavar="URL", help="where handoffs are kept (setting ledger_url)"
    )
    subcommand(
        "serve",
        "run the sidecar: API, status page, worker, reaper, /metrics",
        parents=[temporal, logging_level],
    )
    reap = subcommand(
        "reap", "fail handoffs past their deadline", parents=[temporal, logging_level]
    )
    proxy = subcommand(
        "proxy",
        "run the gRPC proxy before Temporal that records handoffs from the wire",
        parents=[temporal, logging_level],
    )
    proxy.add_argument(
        "--listen-address",
        dest="proxy_listen_address",
        metavar="HOST:PORT",
        help="where workers and completers dial (setting proxy_listen_address)",
    )
    proxy.add_argument(
        "--metrics-address",
        dest="proxy_metrics_address",
        metavar="HOST:PORT",
        help="where /metrics is served (setting proxy_metrics_address)",
    )
    proxy.add_argument(
        "--async-activity",
        dest="proxy_async_activities",
        action="append",
        metavar="[QUEUE/]TYPE[=TARGET]",
        help="an activity type that completes asynchronously; repeat for more "
        "(setting proxy_async_activities)",
    )
    reap.add_argument("--once", action="store_true", help="one scan, print a table, exit")
    reconcile = subcommand(
        "reconcile",
        "close pending handoffs that Temporal closed without handshake-obs",
        parents=[temporal, logging_level],
    )
    reconcile.add_argument("--once", action="store_true", help="one pass, print a table, exit")
    _add_dev(
        subcommand(
            "dev",
            "run the local stack with demo traffic (Ctrl-C stops it)",
            parents=[logging_level],
        )
    )
    _add_demo(
        subcommand(
            "demo",
            "demo traffic through an existing sidecar and Temporal (the compose demo)",
            parents=[address],
        )
    )
    _add_inventory(subcommand)
    _add_export(
        subcommand(
            "export",
            "write the alert rules, the Grafana dashboard or the runbook into a folder",
            description="Write the shipped artifacts, rendered with one configuration: the "
            "same job selector and thresholds in the rules and the dashboard.",
        )
    )
    return parser


def command(name: str) -> Command:
    """The function that runs subcommand ``name``, imported now."""
    module, _, function = COMMANDS[name].partition(":")
    try:
        runner: Command = getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as err:
        # The production image leaves the local stack and its demo out.
        if err.name != _LOCAL_STACK:
            raise
        from .._errors import ConfigurationError  # noqa: PLC0415

        raise ConfigurationError(
            f"{name!r} is not part of this installation (the production image has no local "
            "stack or demo): build the image's demo target, or pip install 'handshake-obs[dev]'"
        ) from None
    return runner


#: The package the production image prunes.
_LOCAL_STACK = "handshake_obs.dev"


def setting_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line gives (options left out are not given)."""
    return {
        name: value for name in SETTING_OPTIONS if (value := getattr(args, name, None)) is not None
    }


def _add_dev(dev: argparse.ArgumentParser) -> None:
    # Each dest is a field of handshake_obs.dev's DevOptions; an option left out keeps its
    # default there (the defaults are not repeated here, and dev is not imported to show them).
    dev.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="where the stack keeps its files"
    )
    dev.add_argument("--temporal-port", type=_port, metavar="PORT")
    dev.add_argument("--temporal-ui-port", type=_port, metavar="PORT")
    dev.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="the sidecar's port: status page, API and /metrics",
    )
    dev.add_argument("--sdk-metrics-port", type=_port, metavar="PORT")
    dev.add_argument("--demo-port", type=_port, metavar="PORT")
    dev.add_argument("--prometheus-port", type=_port, metavar="PORT")
    dev.add_argument("--alertmanager-port", type=_port, metavar="PORT")
    dev.add_argument(
        "--no-prometheus",
        dest="with_prometheus",
        action="store_false",
        default=None,
        help="do not start Prometheus and Alertmanager even when installed",
    )
    dev.add_argument(
        "--rules-dir",
        type=Path,
        metavar="DIR",
        help="Prometheus rule files to load (default: the rules this package ships)",
    )
    dev.add_argument(
        "--rate",
        dest="workflows_per_second",
        type=_positive_float,
        metavar="N",
        help="demo workflows started per second",
    )
    dev.add_argument(
        "--activity-timeout",
        dest="activity_timeout_seconds",
        type=parse_duration,
        metavar="DURATION",
        help=f"start-to-close timeout of demo activities ({_DURATION_HELP})",
    )
    dev.add_argument("--seed", type=int, metavar="N", help="seed of the demo traffic's choices")


def _add_demo(demo: argparse.ArgumentParser) -> None:
    demo.add_argument(
        "--listen",
        default="127.0.0.1:9470",
        metavar="HOST:PORT",
        help="where the fake external system receives the sidecar's handoffs "
        "(default: 127.0.0.1:9470)",
    )
    demo.add_argument(
        "--rate",
        type=_positive_float,
        default=2.0,
        metavar="N",
        help="demo workflows started per second (default: 2)",
    )
    demo.add_argument(
        "--activity-timeout",
        dest="activity_timeout_seconds",
        type=parse_duration,
        default=60.0,
        metavar="DURATION",
        help=f"start-to-close timeout of demo activities ({_DURATION_HELP}; default: 60s)",
    )
    demo.add_argument("--seed", type=int, metavar="N", help="seed of the demo traffic's choices")


def _add_inventory(subcommand: Callable[..., argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        metavar="URL",
        help="the sidecar's base URL (setting url; default: http:// + listen_address)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    inventory = argparse.ArgumentParser(add_help=False, parents=[common])
    inventory.add_argument(
        "--token",
        dest="inventory_token",
        metavar="TOKEN",
        help="inventory token (setting inventory_token)",
    )
    operator = argparse.ArgumentParser(add_help=False, parents=[common])
    operator.add_argument(
        "--token",
        dest="operator_token",
        metavar="TOKEN",
        help="operator token (setting operator_token)",
    )

    pending = subcommand(
        "pending", "list a sidecar's handoffs, oldest start first", parents=[inventory]
    )
    _add_filters(pending, state_default="pending")
    pending.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"most handoffs listed (default: {DEFAULT_LIMIT})",
    )

    show = subcommand(
        "show",
        "every field of one handoff: by id, or the oldest the filters select",
        parents=[inventory],
    )
    show.add_argument("handoff_id", metavar="ID", nargs="?", help="the handoff id (ho_...)")
    _add_filters(show, state_default="all", by_id=False)

    fail = subcommand(
        "fail", "fail a stuck handoff now (HandoffFailedByOperator)", parents=[operator]
    )
    fail.add_argument("handoff_id", metavar="ID", help="the handoff id (ho_...)")
    fail.add_argument("--reason", required=True, help="why, as the workflow will see it")

    extend = subcommand("extend", "move a handoff's deadline", parents=[operator])
    extend.add_argument("handoff_id", metavar="ID", help="the handoff id (ho_...)")
    when = extend.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--by", type=parse_duration, metavar="DURATION", help=f"from now ({_DURATION_HELP})"
    )
    when.add_argument(
        "--until", type=parse_instant, metavar="TIME", help="e.g. 2026-11-23T12:00:00Z"
    )


def _add_filters(
    command: argparse.ArgumentParser, *, state_default: str, by_id: bool = True
) -> None:
    """The search of the status page and the API (handshake_obs._handoff_filter); ``by_id``
    False where the handoff id is the command's positional argument."""
    if by_id:
        command.add_argument("--handoff-id", metavar="ID", help=FILTER_FIELDS["handoff_id"])
    command.add_argument("--workflow-id", metavar="PREFIX", help=FILTER_FIELDS["workflow_id"])
    command.add_argument("--target", metavar="NAME", help=FILTER_FIELDS["target"])
    command.add_argument(
        "--state",
        choices=("pending", "finished", "all"),
        default=state_default,
        help=f"which handoffs (default: {state_default})",
    )
    command.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="DURATION",
        help=f"only handoffs started at least this long ago ({_DURATION_HELP})",
    )


def _add_export(export: argparse.ArgumentParser) -> None:
    # The dests are read by handshake_obs.cli._export; a threshold's default lives on
    # RuleSettings alone (docs/alerts.md lists them).
    export.add_argument("artifact", choices=EXPORT_ARTIFACTS, help="what to write")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to")
    export.add_argument(
        "--format",
        dest="rule_format",
        choices=RULE_FORMATS,
        default="rules",
        help="rules: a Prometheus rule file; prometheusrule: the Prometheus Operator's "
        "PrometheusRule resource (default: rules)",
    )
    export.add_argument(
        "--job", dest="sidecar_job", metavar="NAME", help="scrape job of the sidecar"
    )
    export.add_argument(
        "--job-selector",
        metavar="MATCHERS",
        help='label matchers that select the sidecar, e.g. job="handshake-obs",namespace="prod"',
    )
    export.add_argument(
        "--status-url",
        metavar="URL",
        help="the sidecar's status page as on-call reaches it: each alert's status_url "
        "annotation opens it filtered to what fired",
    )
    export.add_argument(
        "--runbook-url", metavar="URL", help="where the runbook is published (runbook_url)"
    )
    export.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a threshold or duration of the rules, e.g. stuck_critical_age=12h",
    )
    export.add_argument(
        "--datasource", metavar="UID", help="the dashboard's default Prometheus data source"
    )
    export.add_argument(
        "--name", default="handshake-obs", metavar="NAME", help="the PrometheusRule's name"
    )
    export.add_argument("--namespace", metavar="NAME", help="the PrometheusRule's namespace")
    export.add_argument(
        "--label",
        dest="labels",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label of the PrometheusRule (e.g. release=prometheus for a ruleSelector)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value
