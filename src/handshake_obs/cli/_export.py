"""``handshake-obs export``: the alert rules, the dashboard and the runbook, written out."""

from __future__ import annotations

import argparse
import sys

from .._errors import ConfigurationError
from ..artifacts import ExportOptions, export, settings_with
from ..config import Settings


def export_command(args: argparse.Namespace, settings: Settings) -> int:
    """Render with the options' settings and write into ``--out``; print each file written."""
    assignments = list(args.assignments)
    if args.sidecar_job:
        assignments.append(f"sidecar_job={args.sidecar_job}")
    if args.job_selector:
        assignments.append(f"job_selector={args.job_selector}")
    if args.status_url:
        assignments.append(f"status_url={args.status_url}")
    if args.runbook_url:
        assignments.append(f"runbook_url={args.runbook_url}")
    labels: dict[str, str] = {}
    for label in args.labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--label {label!r}: expected KEY=VALUE")
        labels[key] = value
    try:
        rule_settings = settings_with(assignments)
    except ValueError as err:
        raise ConfigurationError(f"--set: {err}") from None
    options = ExportOptions(
        settings=rule_settings,
        rule_format=args.rule_format,
        datasource=args.datasource,
        name=args.name,
        namespace=args.namespace,
        labels=labels,
    )
    for path in export(args.artifact, args.out, options):
        sys.stdout.write(f"{path}\n")
    return 0
