"""The shipped rule file: rendered from ``alerts/rules.py``, clean for promtool, unit-tested
firing and not firing, and linted (names, severities, annotations, runbook anchors)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.rules import (
    RULES_FILE,
    SEVERITIES,
    RuleSettings,
    alert_rules,
    recording_rules,
    render,
    settings_with,
)

from .support.binaries import promtool
from .support.dev_stack import PROJECT_ROOT

UNIT_TESTS = sorted((PROJECT_ROOT / "alerts" / "tests").glob("*.test.yml"))
RUNBOOK = PROJECT_ROOT / "docs" / "runbook.md"
ALERTS_DOC = PROJECT_ROOT / "docs" / "alerts.md"


def shipped_alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False, cwd=PROJECT_ROOT
    )


def test_committed_rule_file_is_rendered_from_rules_py() -> None:
    assert RULES_FILE.read_text() == render(), (
        "alerts/handshake-obs.rules.yml is stale: run .venv/bin/python alerts/rules.py"
    )


def test_rules_py_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "rules.yml"
    stale.write_text(render(settings_with(["backlog_pending=5"])))
    script = str(PROJECT_ROOT / "alerts" / "rules.py")
    assert run(sys.executable, script, "--check", "--output", str(stale)).returncode == 1
    assert run(sys.executable, script, "--check").returncode == 0


def test_promtool_check_rules_is_clean() -> None:
    result = run(promtool(), "check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "WARNING" not in (result.stdout + result.stderr).upper()


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS, "no promtool unit tests under alerts/tests/"
    result = run(promtool(), "test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_and_tier_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if not expected:
                    quiet.add(check["alertname"])
                for alert in expected:
                    firing.add((check["alertname"], alert["exp_labels"]["severity"]))
                    # Inhibition matches on job: every alert must keep it.
                    assert "job" in alert["exp_labels"], (check["alertname"], alert)
    tiers = {(a["alert"], a["labels"]["severity"]) for a in shipped_alerts()}
    assert tiers - firing == set(), "alerts never shown firing"
    assert {name for name, _ in tiers} - quiet == set(), "alerts never shown not firing"


def test_required_alerts_exist_with_their_severities() -> None:
    tiers = {(a["alert"], a["labels"]["severity"]) for a in shipped_alerts()}
    assert tiers >= {
        ("HandshakeHandoffsStuck", "warning"),
        ("HandshakeHandoffsStuck", "critical"),
        ("HandshakeCompletionFailureRatioHigh", "critical"),
        ("HandshakeCompletionRpcLatencyHigh", "warning"),
        ("HandshakePendingBacklogHigh", "warning"),
        ("HandshakePendingBacklogGrowing", "warning"),
        ("HandshakeHandoffsReaped", "warning"),
        ("HandshakeReaperNotRunning", "critical"),
        ("HandshakeReaperFailing", "critical"),
        ("HandshakeSidecarDown", "critical"),
    }


def test_alert_names_are_camel_case() -> None:
    for alert in shipped_alerts():
        assert re.fullmatch(r"Handshake(?:[A-Z][a-z0-9]+)+", alert["alert"]), alert["alert"]


def test_every_alert_has_a_known_severity_and_a_for_duration() -> None:
    for alert in shipped_alerts():
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert set(alert["labels"]) == {"severity"}, alert["alert"]
        assert re.fullmatch(r"(\d+[smhdwy])+", alert["for"]), alert["alert"]


def test_summaries_are_static_sentences() -> None:
    for alert in shipped_alerts():
        summary = alert["annotations"]["summary"]
        assert "{{" not in summary, alert["alert"]
        assert "$" not in summary, alert["alert"]
        assert summary[0].isupper(), summary
        assert summary.endswith("."), summary
        assert len(summary) <= 100, summary


def test_descriptions_are_templated_sentences() -> None:
    for alert in shipped_alerts():
        description = alert["annotations"]["description"]
        assert re.search(r"\{\{[^}]*\$(labels|value)", description), alert["alert"]
        assert "{{ $labels.job }}" in description, alert["alert"]
        assert description.rstrip().endswith("."), description


def test_every_runbook_url_points_to_an_anchor_of_the_runbook() -> None:
    anchors = github_anchors(RUNBOOK.read_text())
    base = RuleSettings().runbook_url
    for alert in shipped_alerts():
        url = alert["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == base, url
        assert page.endswith("/docs/runbook.md"), url
        assert anchor in anchors, f"{alert['alert']}: no heading for #{anchor} in docs/runbook.md"


def test_runbook_says_what_to_do_for_every_alert() -> None:
    sections = re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)
    by_title = {section.splitlines()[0].strip(): section for section in sections[1:]}
    for name in {a["alert"] for a in shipped_alerts()}:
        section = by_title.get(name)
        assert section is not None, f"docs/runbook.md has no section '## {name}'"
        for part in ("Meaning", "Impact", "Diagnosis", "Mitigation"):
            assert f"### {part}" in section or f"**{part}" in section, (name, part)


def test_every_alert_links_to_the_status_page_and_its_runbook_diagnosis_starts_there() -> None:
    sections = re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)
    by_title = {section.splitlines()[0].strip(): section for section in sections[1:]}
    for alert in shipped_alerts():
        status = alert["annotations"]["status_url"]
        assert status.startswith(RuleSettings().status_url + "?state="), status
        diagnosis = by_title[alert["alert"]].split("**Diagnosis.**", 1)[1].lstrip()
        assert diagnosis.startswith("- Open the alert's `status_url`"), alert["alert"]


def test_alert_checks_are_parts_of_their_expressions() -> None:
    # The no-dead-query test runs each alert's checks against a real Prometheus.
    for alert in alert_rules(RuleSettings()):
        assert alert.checks, alert.name
        for check in alert.checks:
            assert check in alert.expr, (alert.name, check)


def test_every_setting_is_documented_and_changes_the_rules() -> None:
    doc = ALERTS_DOC.read_text()
    defaults = RuleSettings()
    for name in RuleSettings.__dataclass_fields__:
        assert f"`{name}`" in doc, f"docs/alerts.md does not document {name}"
        if name == "runbook_url":
            continue
        assert render(settings_with([f"{name}={_another(name, getattr(defaults, name))}"])) != (
            render()
        ), name


def _another(name: str, value: object) -> str:
    """A valid value other than the default."""
    if name == "sidecar_job":
        return "my-sidecar"
    if isinstance(value, str):
        return "7h"
    return "0.25" if isinstance(value, float) else "42"


def test_settings_reject_unknown_names_and_bad_durations() -> None:
    with pytest.raises(ValueError, match="NAME=VALUE"):
        settings_with(["no_such_threshold=1"])
    with pytest.raises(ValueError, match="Prometheus duration"):
        settings_with(["stuck_critical_age=one day"])


def test_recording_rules_keep_the_job_label() -> None:
    for rule in recording_rules(RuleSettings()):
        level = rule.record.split(":")[0]
        assert level.split("_")[0] == "job", rule.record
        assert "by (job" in rule.expr, rule.record
