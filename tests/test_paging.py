"""Paging end to end: a real sidecar, a real Prometheus with the rules, a real Alertmanager
with the shipped routing, and a webhook receiver in the test.

``handshake-obs dev`` loses tokens on purpose; the reaper fails them at their deadline;
``HandshakeHandoffsReaped`` fires and reaches the ``tickets`` webhook. Then a second sidecar
replica of the same job (``handshake-obs serve`` on the same ledger) is killed:
``HandshakeSidecarDown`` fires with its job label, reaches the ``pager`` webhook, and the
warning, still firing in Prometheus, is inhibited in Alertmanager: it stops being re-sent.

The rules are the shipped ones rendered with one change, ``target_down_for=3s`` (default
2m), so the test does not wait two minutes; the reaped alert uses its default ``for: 0m``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from alerts.rules import RuleSettings, render, settings_with

from .support.alertmanager import (
    TEST_TIMINGS,
    WebhookReceiver,
    config_for_test,
    running_alertmanager,
)
from .support.dev_stack import PROJECT_ROOT, dev_stack, sidecar_replica
from .support.processes import wait_until
from .support.prometheus import ScrapeJob, prometheus_config, running_prometheus

SHIPPED_ALERTMANAGER = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
JOB = RuleSettings().sidecar_job
REPEAT = float(TEST_TIMINGS["repeat_interval"].rstrip("s"))


def test_lost_token_is_reaped_and_paged_and_a_critical_alert_inhibits_warnings(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "handshake-obs.rules.yml"
    rules.write_text(render(settings_with(["target_down_for=3s"])))
    shipped = yaml.safe_load(SHIPPED_ALERTMANAGER.read_text())

    with (
        WebhookReceiver() as webhook,
        running_alertmanager(tmp_path / "am", config_for_test(shipped, webhook.url)) as am,
        dev_stack(tmp_path) as stack,
        sidecar_replica(tmp_path, stack, name="replica") as (replica, replica_target),
    ):
        config = prometheus_config(
            [ScrapeJob(JOB, [stack.metrics_target, replica_target])],
            rule_files=[rules],
            alertmanager=am.address,
        )
        with running_prometheus(tmp_path / "prometheus", config) as prometheus:
            # 1. A lost token is reaped, the warning fires and reaches the tickets receiver.
            _, reaped = wait_until(
                lambda: next(iter(webhook.firing("HandshakeHandoffsReaped")), None),
                timeout=60,
                what=lambda: "HandshakeHandoffsReaped at the webhook\n" + stack.process.log_tail(),
            )
            notification = webhook.firing("HandshakeHandoffsReaped")[0][0]
            assert notification.receiver == "tickets"
            assert reaped["labels"]["severity"] == "warning"
            assert reaped["labels"]["job"] == JOB
            assert reaped["labels"]["target"] in {"agent-runner", "java-billing", "human-approval"}
            annotations = reaped["annotations"]
            assert annotations["runbook_url"].endswith("/docs/runbook.md#handshakehandoffsreaped")
            assert "HandoffDeadlineExceeded" in annotations["description"]
            assert "{{" not in annotations["description"]
            assert prometheus.finite_values(
                'sum(handshake_handoffs_finished_total{outcome="reaped"}) > 0'
            )
            assert not webhook.firing("HandshakeSidecarDown")

            # While nothing critical fires, the warning is re-sent every repeat interval.
            wait_until(
                lambda: len(_warning_notifications(webhook)) >= 2,
                timeout=10 * REPEAT,
                what="the warning to be re-sent",
            )

            # 2. A replica of the sidecar job dies: the critical alert keeps the job label.
            replica.kill()
            _, down = wait_until(
                lambda: next(iter(webhook.firing("HandshakeSidecarDown")), None),
                timeout=30,
                what=lambda: (
                    "HandshakeSidecarDown at the webhook\n" + prometheus.process.log_tail()
                ),
            )
            critical_at = time.monotonic()
            assert webhook.firing("HandshakeSidecarDown")[0][0].receiver == "pager"
            assert down["labels"]["severity"] == "critical"
            assert down["labels"]["job"] == JOB
            assert down["labels"]["instance"] == replica_target

            # 3. The warning of the same job is inhibited: Alertmanager marks it suppressed
            # by the critical alert, and no longer sends it, though Prometheus still fires it.
            suppressed = _reaped_alerts(am.alerts("HandshakeHandoffsReaped"))
            assert suppressed, "the reaped alert should still be active in Alertmanager"
            for alert in suppressed:
                assert alert["status"]["state"] == "suppressed", alert["status"]
                assert alert["status"]["inhibitedBy"], alert["status"]
            time.sleep(3 * REPEAT)
            assert prometheus.query(
                'ALERTS{alertname="HandshakeHandoffsReaped", alertstate="firing"}'
            )
            late = [n for n in _warning_notifications(webhook) if n > critical_at + 0.5]
            assert late == [], "a warning was sent while a critical alert of its job fired"


def _warning_notifications(webhook: WebhookReceiver) -> list[float]:
    """When each notification carrying a firing warning arrived."""
    return sorted(
        {
            notification.received_at
            for notification, alert in webhook.firing("HandshakeHandoffsReaped")
        }
    )


def _reaped_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["labels"].get("severity") == "warning"]
