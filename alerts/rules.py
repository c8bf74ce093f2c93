"""Renders the committed rule files from ``handshake_obs.artifacts`` (the one source).

``handshake-obs.rules.yml`` beside this file and the Kubernetes base's ``PrometheusRule``
(``deploy/kubernetes/base/prometheusrule.yaml``) are rendered with the default
:class:`RuleSettings` and committed; CI fails when either is stale. To change a threshold
for everyone, change its default in ``src/handshake_obs/artifacts/_rule_settings.py`` and
render again; to render your own variant, use ``handshake-obs export rules --set`` (or
``--set`` here, see ``docs/alerts.md``)::

    .venv/bin/python alerts/rules.py                 # rewrite the committed rule files
    .venv/bin/python alerts/rules.py --check         # exit 1 when one is stale
    .venv/bin/python alerts/rules.py --set stuck_critical_age=12h --output my.rules.yml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from handshake_obs.artifacts import (
    FAILED_OUTCOMES,
    QUANTILES,
    SEVERITIES,
    Alert,
    Recorded,
    Recording,
    RuleSettings,
    alert_rules,
    number,
    recording_rules,
    render,
    render_prometheus_rule,
    rule_groups,
    seconds,
    settings_with,
)

__all__ = [
    "FAILED_OUTCOMES",
    "PROMETHEUS_RULE_FILE",
    "QUANTILES",
    "RULES_FILE",
    "SEVERITIES",
    "Alert",
    "Recorded",
    "Recording",
    "RuleSettings",
    "alert_rules",
    "main",
    "number",
    "recording_rules",
    "render",
    "rule_groups",
    "seconds",
    "settings_with",
]

#: The committed rule file, rendered with the default settings.
RULES_FILE = Path(__file__).with_name("handshake-obs.rules.yml")
#: The committed PrometheusRule of the Kubernetes base, rendered with the default settings.
PROMETHEUS_RULE_FILE = (
    Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"
)


def committed() -> dict[Path, str]:
    """Each committed file and what it must hold."""
    return {RULES_FILE: render(), PROMETHEUS_RULE_FILE: render_prometheus_rule()}


def main(argv: Sequence[str] | None = None) -> int:
    """Render the rules; ``--check`` compares with the committed files instead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the output is stale")
    parser.add_argument("--output", type=Path, help="write (or check) only this rule file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting"
    )
    args = parser.parse_args(argv)
    try:
        settings = settings_with(args.set)
    except ValueError as err:
        parser.error(str(err))
    outputs = {args.output: render(settings)} if args.output else committed()
    if args.set and not args.output:
        parser.error("--set renders a variant: give it an --output")
    status = 0
    for path, text in outputs.items():
        if args.check:
            if (path.read_text() if path.exists() else "") != text:
                sys.stderr.write(f"{path} is stale: run .venv/bin/python alerts/rules.py\n")
                status = 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return status


if __name__ == "__main__":
    if not __package__:  # run as a script: handshake_obs comes from the installed package
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
