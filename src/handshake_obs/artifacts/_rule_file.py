"""The rules as files: a Prometheus rule file, or a Prometheus Operator ``PrometheusRule``.

Both hold the same groups (:func:`~._rules.rule_groups`); the ``PrometheusRule`` wraps them in
the custom resource the Operator's Prometheus loads, so it is applied as is
(``kubectl apply -f``). Multi-line expressions are written as YAML literal blocks so that a
diff of a rendered file stays readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .._extras import require_extra

require_extra("export", "rendering the alert rules (handshake-obs export rules)")

import yaml  # noqa: E402

from ._rule_settings import RuleSettings  # noqa: E402
from ._rules import rule_groups  # noqa: E402

#: The kinds of rule output ``handshake-obs export rules --format`` writes.
RULE_FORMATS: Final = ("rules", "prometheusrule")
#: Labels every rendered ``PrometheusRule`` carries (a ``ruleSelector`` may match them).
PROMETHEUS_RULE_LABELS: Final[Mapping[str, str]] = {
    "app.kubernetes.io/name": "handshake-obs",
    "app.kubernetes.io/component": "alerting",
}

_HEADER = """\
# Prometheus rules of handshake-obs, rendered by `handshake-obs export rules` (this committed
# copy by `.venv/bin/python alerts/rules.py`); thresholds and how to change them: docs/alerts.md.
"""
_OPERATOR_HEADER = """\
# The Prometheus rules of handshake-obs as a Prometheus Operator PrometheusRule, rendered by
# `handshake-obs export rules --format prometheusrule`; thresholds: docs/alerts.md.
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, everything else as PyYAML chooses."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(document: Mapping[str, Any]) -> str:
    return yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,  # one line per value: diffs of the rendered file stay readable
        allow_unicode=True,
    )


def render(settings: RuleSettings | None = None) -> str:
    """The rule file (``rule_files:`` of a Prometheus) as YAML."""
    return _HEADER + _dump(rule_groups(settings or RuleSettings()))


def prometheus_rule(
    settings: RuleSettings | None = None,
    *,
    name: str = "handshake-obs",
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The rules as a ``monitoring.coreos.com/v1`` ``PrometheusRule`` resource.

    ``labels`` are added to :data:`PROMETHEUS_RULE_LABELS` (e.g. ``release: prometheus``, what
    a kube-prometheus-stack's ``ruleSelector`` asks for).
    """
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {**PROMETHEUS_RULE_LABELS, **(labels or {})}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": rule_groups(settings or RuleSettings()),
    }


def render_prometheus_rule(
    settings: RuleSettings | None = None,
    *,
    name: str = "handshake-obs",
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """:func:`prometheus_rule` as YAML."""
    resource = prometheus_rule(settings, name=name, namespace=namespace, labels=labels)
    return _OPERATOR_HEADER + _dump(resource)
