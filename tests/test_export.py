"""``handshake-obs export``: the shipped rules, dashboard and runbook, written out with one
configuration. The exported rules are promtool-clean and pass the promtool unit tests, the
PrometheusRule validates against the Operator's CRD, the job selector is a setting (never a
hard-coded job), and the dashboard follows the same job selector and thresholds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.rules import PROMETHEUS_RULE_FILE, RULES_FILE
from handshake_obs.artifacts import ARTIFACTS, RuleSettings, packaged_runbook_text, seconds
from handshake_obs.cli._parser import EXPORT_ARTIFACTS, RULE_FORMATS

from .support.binaries import promtool
from .support.crd import crd_errors
from .support.dev_stack import PROJECT_ROOT

UNIT_TESTS = PROJECT_ROOT / "alerts" / "tests" / "handshake-obs.test.yml"
DASHBOARD = PROJECT_ROOT / "dashboards" / "handshake-obs.json"
SELECTOR = 'job="payments-hs",namespace="payments"'


def export(*argv: str) -> list[Path]:
    result = subprocess.run(
        [sys.executable, "-m", "handshake_obs", "export", *argv],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [Path(line) for line in result.stdout.splitlines()]


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=60, check=False
    )


def alerts_of(document: dict[str, Any]) -> dict[str, str]:
    return {
        rule["alert"]: rule["expr"]
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_the_parser_offers_exactly_what_the_package_exports() -> None:
    from handshake_obs import artifacts  # noqa: PLC0415

    assert (*ARTIFACTS, "all") == EXPORT_ARTIFACTS
    assert artifacts.RULE_FORMATS == RULE_FORMATS


def test_export_all_with_the_defaults_writes_the_committed_files(tmp_path: Path) -> None:
    written = export("all", "--out", str(tmp_path))
    assert [p.name for p in written] == [
        "handshake-obs.rules.yml",
        "handshake-obs.json",
        "runbook.md",
    ]
    assert (tmp_path / "handshake-obs.rules.yml").read_text() == RULES_FILE.read_text()
    assert (tmp_path / "handshake-obs.json").read_text() == DASHBOARD.read_text()
    runbook = (PROJECT_ROOT / "docs" / "runbook.md").read_text()
    assert (tmp_path / "runbook.md").read_text() == runbook
    assert packaged_runbook_text() == runbook, (
        "src/handshake_obs/artifacts/data/runbook.md is stale: copy docs/runbook.md there"
    )


def test_the_exported_rules_are_promtool_clean_and_pass_the_promtool_unit_tests(
    tmp_path: Path,
) -> None:
    (rules,) = export("rules", "--out", str(tmp_path / "out"))
    checked = run(promtool(), "check", "rules", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "WARNING" not in (checked.stdout + checked.stderr).upper()
    # The committed unit tests, pointed at the exported file.
    tests = yaml.safe_load(UNIT_TESTS.read_text())
    tests["rule_files"] = [str(rules)]
    unit = tmp_path / "exported.test.yml"
    unit.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = run(promtool(), "test", "rules", unit)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_job_selector_and_thresholds_are_options_never_hard_coded(tmp_path: Path) -> None:
    (rules,) = export(
        "rules", "--out", str(tmp_path), "--job-selector", SELECTOR,
        "--set", "stuck_critical_age=12h", "--set", "reaper_stale_after=10m",
    )  # fmt: skip
    text = rules.read_text()
    assert 'job="handshake-obs"' not in text
    checked = run(promtool(), "check", "rules", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = alerts_of(yaml.safe_load(text))
    for name in ("HandshakeReaperNotRunning", "HandshakeReaperFailing", "HandshakeSidecarDown"):
        assert SELECTOR in alerts[name], name
    assert "> 43200" in text  # 12h
    assert alerts["HandshakeReaperNotRunning"].endswith("> 600")
    (renamed,) = export("rules", "--out", str(tmp_path / "job"), "--job", "my-sidecar")
    assert 'up{job="my-sidecar"}' in renamed.read_text()
    assert 'job="handshake-obs"' not in renamed.read_text()


def test_the_dashboard_follows_the_same_selector_thresholds_and_datasource(
    tmp_path: Path,
) -> None:
    (path,) = export(
        "dashboards", "--out", str(tmp_path), "--job-selector", SELECTOR,
        "--set", "stuck_warning_age=2h", "--set", "stuck_critical_age=12h",
        "--datasource", "prom-main",
    )  # fmt: skip
    board = json.loads(path.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert SELECTOR in variables["job"]["query"]
    assert variables["datasource"]["current"]["value"] == "prom-main"
    (oldest,) = [p for p in board["panels"] if p["title"] == "Oldest pending handoff"]
    steps = oldest["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, seconds("2h"), seconds("12h")]
    # The panels that mirror an alert colour where the defaults fire, in the committed JSON.
    committed = json.loads(DASHBOARD.read_text())
    (default_oldest,) = [p for p in committed["panels"] if p["title"] == "Oldest pending handoff"]
    defaults = RuleSettings()
    default_steps = default_oldest["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in default_steps] == [
        None, seconds(defaults.stuck_warning_age), seconds(defaults.stuck_critical_age),
    ]  # fmt: skip


def test_the_prometheusrule_validates_against_the_operators_crd(tmp_path: Path) -> None:
    (path,) = export(
        "rules", "--format", "prometheusrule", "--out", str(tmp_path),
        "--namespace", "monitoring", "--label", "release=prometheus",
    )  # fmt: skip
    resource = yaml.safe_load(path.read_text())
    assert crd_errors(resource) == []
    assert resource["metadata"]["labels"]["release"] == "prometheus"
    assert resource["metadata"]["namespace"] == "monitoring"
    # Its groups are the rule file's: promtool reads them as one.
    groups = tmp_path / "groups.yml"
    groups.write_text(yaml.safe_dump(resource["spec"]))
    checked = run(promtool(), "check", "rules", groups)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The Kubernetes base ships the default rendering.
    assert yaml.safe_load(PROMETHEUS_RULE_FILE.read_text())["spec"] == resource["spec"]


def test_the_crd_check_refuses_what_the_operator_would_refuse() -> None:
    """The CRD check is not vacuous: a misspelt field and a wrong type are found."""
    resource = yaml.safe_load(PROMETHEUS_RULE_FILE.read_text())
    resource["spec"]["groups"][0]["rules"][0]["expresion"] = "up"
    resource["spec"]["groups"][0]["interval"] = 30
    errors = crd_errors(resource)
    assert any("expresion" in e for e in errors), errors
    assert any("interval" in e for e in errors), errors


def test_the_rule_files_are_rendered_from_the_package(tmp_path: Path) -> None:
    script = PROJECT_ROOT / "alerts" / "rules.py"
    assert run(sys.executable, script, "--check").returncode == 0
    stale = tmp_path / "prometheusrule.yaml"
    shutil.copy(PROMETHEUS_RULE_FILE, stale)
    stale.write_text(stale.read_text().replace("> 300", "> 301"))
    assert run(sys.executable, script, "--check", "--output", str(stale)).returncode == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "stuck_critical_age=one day"], "Prometheus duration"),
        (["--set", "nonsense=1"], "NAME=VALUE"),
        (["--label", "novalue"], "KEY=VALUE"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "handshake_obs", "export", "rules", "--out", str(tmp_path), *argv],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
