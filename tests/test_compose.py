"""The compose stack, validated without a Docker engine: the compose specification's schema,
files and services that exist, Prometheus and Alertmanager configs checked by their own
tools, every cross-reference between the services, and the demo worker run for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from prometheus_client.parser import text_string_to_metric_families

from alerts.rules import RULES_FILE, RuleSettings

from .support.binaries import amtool, promtool
from .support.dev_stack import PROJECT_ROOT
from .support.ports import free_port
from .support.processes import ManagedProcess, answers, http_get
from .support.prometheus import ScrapeJob, prometheus_config, running_prometheus
from .support.waiting import assert_eventually

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DEPLOY = PROJECT_ROOT / "deploy"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RECEIVER_OF_SEVERITY = {"critical": "pager", "warning": "tickets"}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def run(*argv: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[Path, str]]:
    """(host path, container path) of every bind mount of a service (not named volumes)."""
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                yield PROJECT_ROOT / volume["source"], volume["target"]
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            yield (PROJECT_ROOT / source).resolve(), target


def exposed_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    for mapping in service.get("ports", []):
        ports.add(int(str(mapping).split(":")[-1].split("/")[0]))
    return ports


def assert_reaches_a_service(address: str, where: str) -> str:
    """``address`` (``host:port`` or a URL) names a compose service and a port it exposes."""
    parsed = urlsplit(address if "//" in address else f"//{address}")
    host, port = parsed.hostname, parsed.port
    all_services = services()
    assert host in all_services, f"{where}: {address} is not a compose service"
    assert port in exposed_ports(all_services[host]), f"{where}: {host} does not expose {port}"
    return str(host)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def container_tree(service: str, root: Path) -> Path:
    """Copy a service's bind mounts under ``root`` where the container would see them."""
    for host, target in bind_mounts(services()[service]):
        destination = root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if host.is_dir():
            shutil.copytree(host, destination, dirs_exist_ok=True)
        else:
            shutil.copy(host, destination)
    return root


def test_compose_file_follows_the_compose_specification() -> None:
    result = run(
        str(Path(sys.executable).parent / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(COMPOSE_FILE),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stack_has_every_part() -> None:
    images = {name: str(s.get("image", "")) for name, s in services().items()}
    expected = {
        "postgresql": "postgres:",
        "temporal-admin-tools": "temporalio/admin-tools:",
        "temporal": "temporalio/server:",
        "temporal-ui": "temporalio/ui:",
        "handshake-obs": "handshake-obs:",
        "prometheus": "prom/prometheus:",
        "alertmanager": "prom/alertmanager:",
        "grafana": "grafana/grafana:",
        "otel-collector": "otel/opentelemetry-collector",
        "jaeger": "jaegertracing/",
    }
    for name, image in expected.items():
        assert images.get(name, "").startswith(image), (name, images.get(name))
    prometheus_command = " ".join(services()["prometheus"]["command"])
    assert "--enable-feature=exemplar-storage" in prometheus_command


def test_every_mounted_file_exists() -> None:
    for name, service in services().items():
        for host, target in bind_mounts(service):
            assert host.exists(), f"{name} mounts {host} at {target}: missing"


def test_every_depends_on_target_is_a_service() -> None:
    names = set(services())
    for name, service in services().items():
        depends = service.get("depends_on", [])
        for target in depends if isinstance(depends, list) else depends.keys():
            assert target in names, f"{name} depends on unknown service {target}"


def test_the_sidecar_image_builds_from_the_repository() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    ignore = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)$", dockerfile, flags=re.MULTILINE))
    # Copies from the build context (a COPY --from=<stage> copies between stages).
    for source in re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", dockerfile, flags=re.MULTILINE):
        for path in source.split():
            assert (PROJECT_ROOT / path).exists(), f"Dockerfile copies missing {path}"
            assert any(path.rstrip("/") == a or path.startswith(a + "/") for a in allowed), (
                f".dockerignore leaves {path} out of the build context"
            )
    targets = {"handshake-obs": "production", "handshake-demo": "demo"}
    for name, target in targets.items():
        assert services()[name]["build"] == {"context": ".", "target": target}, name
        assert target in stages, f"the Dockerfile has no stage {target}"
    # The demo is a subcommand of the image's entry point, as the sidecar is.
    assert services()["handshake-demo"]["command"][0] == "demo"
    assert services()["handshake-obs"]["command"] == ["serve"]


def test_promtool_checks_prometheus_config_with_the_rules_as_mounted(tmp_path: Path) -> None:
    root = container_tree("prometheus", tmp_path)
    config = root / "etc" / "prometheus" / "prometheus.yml"
    result = run(promtool(), "check", "config", str(config), cwd=config.parent)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert RULES_FILE.name in output, output
    assert "SUCCESS: 1 rule files found" in output, output


def test_prometheus_scrapes_the_services_compose_defines() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host = target.split(":")[0]
                if host == "localhost":  # Prometheus itself
                    continue
                assert_reaches_a_service(target, f"scrape job {job['job_name']}")
                scraped.setdefault(job["job_name"], set()).add(host)
    # Every process that shares the ledger is scraped under the job the rules select.
    assert scraped[RuleSettings().sidecar_job] == {"handshake-obs"}
    assert {"temporal", "alertmanager", "otel-collector"} <= set().union(*scraped.values())
    for manager in config["alerting"]["alertmanagers"]:
        for target in manager["static_configs"][0]["targets"]:
            assert assert_reaches_a_service(target, "alerting") == "alertmanager"


def test_amtool_checks_alertmanager_config() -> None:
    result = run(amtool(), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    mounted = dict(bind_mounts(services()["alertmanager"]))
    assert mounted[ALERTMANAGER_CONFIG] == "/etc/alertmanager/alertmanager.yml"


def test_every_alert_routes_to_the_receiver_of_its_severity() -> None:
    rules = yaml.safe_load(RULES_FILE.read_text())["groups"]
    alerts = {
        (r["alert"], r["labels"]["severity"]) for g in rules for r in g["rules"] if "alert" in r
    }
    for alertname, severity in sorted(alerts):
        result = run(
            amtool(), "config", "routes", "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--verify.receivers={RECEIVER_OF_SEVERITY[severity]}",
            f"alertname={alertname}", f"severity={severity}",
            f"job={RuleSettings().sidecar_job}", "target=agent-runner",
        )  # fmt: skip
        assert result.returncode == 0, (alertname, severity, result.stdout + result.stderr)


def test_warnings_are_inhibited_by_a_critical_alert_of_the_same_job() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    assert config["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["job"],
        }
    ]


def test_grafana_provisions_the_datasources_and_the_dashboards() -> None:
    grafana = services()["grafana"]
    mounts = {target: host for host, target in bind_mounts(grafana)}
    provisioning = mounts["/etc/grafana/provisioning"]
    datasources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.yaml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    by_uid = {source["uid"]: source for source in datasources}
    for source in datasources:
        assert_reaches_a_service(source["url"], f"Grafana datasource {source['name']}")
    prometheus = [s for s in datasources if s["type"] == "prometheus"]
    assert len(prometheus) == 1
    assert prometheus[0].get("isDefault")
    # Exemplars carry trace_id (handshake_completion_latency_seconds); it opens the trace.
    (link,) = prometheus[0]["jsonData"]["exemplarTraceIdDestinations"]
    assert link["name"] == "trace_id"
    assert by_uid[link["datasourceUid"]]["type"] in {"jaeger", "tempo"}

    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.yaml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    (provider,) = providers
    dashboards_dir = mounts[provider["options"]["path"]]
    assert dashboards_dir == PROJECT_ROOT / "dashboards"
    assert (dashboards_dir / "handshake-obs.json").exists()
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (dashboards_dir / Path(home).name).exists()


def test_traces_flow_from_the_services_to_the_backend() -> None:
    collector = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())
    for exporter in collector["exporters"].values():
        assert_reaches_a_service(exporter["endpoint"], "collector exporter")
    grpc = collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert int(grpc.rsplit(":", 1)[1]) in exposed_ports(services()["otel-collector"])
    for name in ("handshake-obs", "handshake-demo"):
        endpoint = environment(services()[name])["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert assert_reaches_a_service(endpoint, name) == "otel-collector"


def test_the_handshake_services_reach_temporal_and_their_ledger() -> None:
    init_sql = (DEPLOY / "postgresql" / "init-handshake.sql").read_text()
    for name in ("handshake-obs", "handshake-demo"):
        env = environment(services()[name])
        # The standard variable, not the deprecated HANDSHAKE_TEMPORAL_ADDRESS.
        assert "HANDSHAKE_TEMPORAL_ADDRESS" not in env, name
        assert assert_reaches_a_service(env["TEMPORAL_ADDRESS"], name) == "temporal"
        ledger = urlsplit(env["HANDSHAKE_LEDGER_URL"])
        assert assert_reaches_a_service(f"{ledger.hostname}:{ledger.port}", name) == "postgresql"
        assert f"CREATE ROLE {ledger.username} LOGIN PASSWORD '{ledger.password}'" in init_sql
        assert f"CREATE DATABASE {ledger.path.lstrip('/')} OWNER {ledger.username}" in init_sql
    temporal = services()["temporal"]
    dynamic = environment(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    mounts = {target: host for host, target in bind_mounts(temporal)}
    assert (mounts["/etc/temporal/config/dynamicconfig"] / Path(dynamic).name).exists()
    for name in ("temporal-admin-tools", "temporal-create-namespace"):
        script = services()[name]["command"][-1]
        scripts = {target: host for host, target in bind_mounts(services()[name])}["/scripts"]
        assert (scripts / Path(script).name).exists(), name


def heatmap_query() -> str:
    """The dashboard's heatmap query, variables filled as Grafana fills them."""
    board = json.loads((PROJECT_ROOT / "dashboards" / "handshake-obs.json").read_text())
    (panel,) = [p for p in board["panels"] if p["type"] == "heatmap"]
    assert panel["targets"][0]["exemplar"] is True
    expr = str(panel["targets"][0]["expr"])
    for variable, value in (
        ("$job", RuleSettings().sidecar_job),
        ("$target", ".+"),
        ("$__rate_interval", "15s"),
    ):
        expr = expr.replace(variable, value)
    return expr


def demo_targets_file(path: Path, delivery_url: str) -> Path:
    """The compose stack's targets file, with its delivery URL pointed at ``delivery_url``."""
    text = (DEPLOY / "handshake-obs" / "targets.toml").read_text()
    assert "http://handshake-demo:9470/handoffs" in text
    path.write_text(text.replace("http://handshake-demo:9470/handoffs", delivery_url))
    return path


def test_the_sidecar_delivers_to_the_demo_service() -> None:
    sidecar = services()["handshake-obs"]
    mounted = {target: host for host, target in bind_mounts(sidecar)}
    config_file = sidecar["environment"]["HANDSHAKE_CONFIG_FILE"]
    targets = tomllib.loads(mounted[config_file].read_text())["targets"]
    demo = services()["handshake-demo"]
    listen = demo["command"][demo["command"].index("--listen") + 1]
    assert listen.endswith(":9470")
    assert "9470" in demo["expose"]
    for target in targets:
        assert target["url"] == "http://handshake-demo:9470/handoffs", target


async def test_the_compose_demo_hands_off_through_the_sidecar_and_exports_exemplars(
    temporal_address: str, tmp_path: Path
) -> None:
    """The compose sidecar and demo services, run as their commands say against a real
    Temporal: handoffs complete and fail through the sidecar's gateway, and the latency
    histogram carries ``trace_id`` exemplars that a real Prometheus with exemplar storage (as
    in compose) keeps, for Grafana's exemplar link to the trace backend."""
    sidecar_port, demo_port = free_port(), free_port()
    demo_service = services()["handshake-demo"]
    compose_env = {
        key: str(value)
        for key, value in services()["handshake-obs"]["environment"].items()
        if not key.startswith("OTEL_")
    }
    env = {
        **os.environ,
        **compose_env,
        "HANDSHAKE_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "TEMPORAL_ADDRESS": temporal_address,
        "HANDSHAKE_LISTEN_ADDRESS": f"127.0.0.1:{sidecar_port}",
        "HANDSHAKE_PUBLIC_URL": f"http://127.0.0.1:{sidecar_port}",
        "HANDSHAKE_TASK_QUEUE": f"compose-{sidecar_port}",
        "HANDSHAKE_CONFIG_FILE": str(
            demo_targets_file(tmp_path / "targets.toml", f"http://127.0.0.1:{demo_port}/handoffs")
        ),
        "HANDSHAKE_REAPER_INTERVAL_SECONDS": "1",
        # Tracing on, as in compose; nobody listens there, so the spans are dropped.
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    command = [str(a) for a in demo_service["command"]]
    command[command.index("--listen") + 1] = f"127.0.0.1:{demo_port}"
    command[command.index("--rate") + 1] = "10"
    sidecar = ManagedProcess(
        "handshake-obs",
        [sys.executable, "-m", "handshake_obs", "--log-json", "serve"],
        log_dir=tmp_path,
        cwd=tmp_path,
        env=env,
    )
    demo = ManagedProcess(
        "handshake-demo",
        [sys.executable, "-m", "handshake_obs", "--log-json", *command],
        log_dir=tmp_path,
        cwd=tmp_path,
        env=env,
    )
    target = f"127.0.0.1:{sidecar_port}"
    config = prometheus_config([ScrapeJob(RuleSettings().sidecar_job, [target])])

    async def finished() -> dict[str, float]:
        sidecar.assert_running()
        demo.assert_running()
        assert answers(f"http://{target}/metrics"), "the sidecar's /metrics does not answer yet"
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(http_get(f"http://{target}/metrics").decode()):
            for sample in family.samples:
                if sample.name == "handshake_handoffs_finished_total":
                    outcome = sample.labels["outcome"]
                    counts[outcome] = counts.get(outcome, 0) + sample.value
        assert counts.get("completed", 0) > 0, counts
        assert counts.get("failed", 0) > 0, counts
        return counts

    try:
        with running_prometheus(tmp_path / "prometheus", config) as prometheus:
            await assert_eventually(finished, timeout=60, interval=0.5)

            async def exemplars() -> list[dict[str, Any]]:
                found = prometheus.exemplars(heatmap_query())
                assert found, "no exemplar in Prometheus yet"
                return found

            found = await assert_eventually(exemplars, timeout=20, interval=0.5)
            assert all(re.fullmatch(r"[0-9a-f]{32}", e["labels"]["trace_id"]) for e in found)
    finally:
        demo.stop(signal.SIGTERM)
        sidecar.stop(signal.SIGTERM)
    assert demo.process.returncode == 0, demo.log_tail()
    assert sidecar.process.returncode == 0, sidecar.log_tail()
