"""The Kubernetes manifests (``deploy/kubernetes``, a kustomize base, a component, an example
overlay), validated offline: rendered with ``kubectl kustomize`` (the base also without it),
every object against Kubernetes' own schemas (``kubernetes-validate``, strict), the
ServiceMonitor and PrometheusRule against the Prometheus Operator's CRDs, and what a
production deployment needs, each asserted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from alerts.rules import PROMETHEUS_RULE_FILE

from .support.crd import CRDS, crd_errors
from .support.dev_stack import PROJECT_ROOT

KUBERNETES = PROJECT_ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
EXAMPLE = KUBERNETES / "overlays" / "example"
#: The Kubernetes version the manifests are validated against (the oldest still supported
#: upstream that this kubernetes-validate carries, and the newest).
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())

Objects = list[dict[str, Any]]


def kubectl() -> str:
    """The kubectl scripts/setup installs beside this interpreter, else one on the PATH."""
    installed = Path(sys.executable).parent / "kubectl"
    found = str(installed) if installed.is_file() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is missing: scripts/setup installs the one the overlays need")
    return found


def render_with_kubectl(directory: Path) -> Objects:
    binary = kubectl()
    result = subprocess.run(
        [binary, "kustomize", str(directory)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_base_by_reading() -> Objects:
    """The base without kubectl: it only lists resources, so it is their concatenation."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources"}, "keep the base plain"
    return [
        doc
        for resource in kustomization["resources"]
        for doc in yaml.safe_load_all((BASE / resource).read_text())
        if doc
    ]


@pytest.fixture(scope="module")
def base() -> Objects:
    return render_base_by_reading()


@pytest.fixture(scope="module")
def example() -> Objects:
    return render_with_kubectl(EXAMPLE)


def one(objects: Objects, kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def container(objects: Objects) -> dict[str, Any]:
    (main,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(main)


def env(objects: Objects) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(objects).get("env", [])}


def validation_errors(objects: Objects) -> list[str]:
    errors = []
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CRDS:
            errors += [f"{where}: {e}" for e in crd_errors(obj)]
            continue
        for kubernetes_version in VERSIONS:
            try:
                kubernetes_validate.validate(obj, kubernetes_version, strict=True)
            except kubernetes_validate.ValidationError as err:
                errors.append(f"{where} ({kubernetes_version}): {err.message}")
    return errors


def test_kubectl_renders_the_base_as_the_reading_does() -> None:
    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    assert sorted(render_with_kubectl(BASE), key=key) == sorted(render_base_by_reading(), key=key)


def test_the_base_and_the_example_validate_against_kubernetes_and_the_operator(
    base: Objects, example: Objects
) -> None:
    assert validation_errors(base) == []
    assert validation_errors(example) == []
    assert {o["kind"] for o in base} >= {
        "Deployment", "Service", "ServiceMonitor", "PrometheusRule", "PodDisruptionBudget",
        "ConfigMap", "ServiceAccount",
    }  # fmt: skip


def test_the_validation_is_not_vacuous(base: Objects) -> None:
    def copy(kind: str) -> dict[str, Any]:
        return dict(yaml.safe_load(yaml.safe_dump(one(base, kind))))

    wrong_type, unknown_field, monitor = (
        copy("Deployment"),
        copy("Deployment"),
        copy("ServiceMonitor"),
    )
    wrong_type["spec"]["replicas"] = "two"
    unknown_field["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    errors = validation_errors([wrong_type, unknown_field, monitor])
    assert any("two" in e for e in errors), errors
    assert any("livenessProbes" in e for e in errors), errors
    assert any("intervall" in e for e in errors), errors


def test_two_replicas_share_a_postgresql_ledger_and_a_disruption_budget(
    base: Objects, example: Objects
) -> None:
    deployment = one(base, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    ledger = env(base)["HANDSHAKE_LEDGER_URL"]["valueFrom"]["secretKeyRef"]
    assert (ledger["name"], ledger["key"]) == ("handshake-obs-ledger", "url")
    secrets = {s["metadata"]["name"]: s for s in example if s["kind"] == "Secret"}
    (ledger_secret,) = [s for name, s in secrets.items() if name.startswith("handshake-obs-ledger")]
    import base64  # noqa: PLC0415

    url = base64.b64decode(ledger_secret["data"]["url"]).decode()
    assert url.startswith("postgresql://"), "replicas need the shared PostgreSQL ledger"
    budget = one(base, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pods.items()


def test_probes_resources_and_a_restricted_security_context(base: Objects) -> None:
    main = container(base)
    port = {p["name"]: p["containerPort"] for p in main["ports"]}["http"]
    assert port == 9464
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["resources"]["requests"].keys() >= {"cpu", "memory"}
    assert "memory" in main["resources"]["limits"]
    security = main["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    # A read-only root: what the process writes goes to emptyDirs.
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"] for m in main["volumeMounts"] if "emptyDir" in volumes[m["name"]]}
    assert writable >= {"/tmp", "/var/lib/handshake-obs"}  # noqa: S108


def test_secrets_reach_the_process_through_the_standard_variables(
    base: Objects, example: Objects
) -> None:
    variables = env(base)
    for name, secret in [
        ("HANDSHAKE_COMPLETION_TOKEN", "handshake-obs-tokens"),
        ("HANDSHAKE_OPERATOR_TOKEN", "handshake-obs-tokens"),
        ("TEMPORAL_API_KEY", "handshake-obs-temporal"),
    ]:
        assert variables[name]["valueFrom"]["secretKeyRef"]["name"] == secret, name
    (config,) = [
        o["data"]
        for o in base
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "handshake-obs"
    ]
    assert "TEMPORAL_ADDRESS" in config
    everything = yaml.safe_dump_all(base + example)
    assert "HANDSHAKE_TEMPORAL_" not in everything, "use the standard TEMPORAL_* variables"
    # mTLS (the component the example uses): the certificate files of a mounted Secret.
    tls = env(example)
    main = container(example)
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    pod = one(example, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["temporal-tls"]["secret"]["secretName"]
    for variable, key in [
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", "tls.crt"),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", "tls.key"),
    ]:
        assert tls[variable]["value"] == f"{mounts['temporal-tls']}/{key}"
    rendered = {s["metadata"]["name"]: s for s in example if s["kind"] == "Secret"}
    assert secret in rendered
    assert rendered[secret]["data"].keys() >= {"tls.crt", "tls.key"}
    # Every required secret key the example's pod reads is in a Secret it renders.
    for entry in tls.values():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref and not ref.get("optional"):
            assert ref["key"] in rendered[ref["name"]]["data"], ref


def test_the_service_monitor_scrapes_the_service_the_rules_select(base: Objects) -> None:
    service, monitor = one(base, "Service"), one(base, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The Operator names the job after the Service: the rules' default job selector.
    rule = one(base, "PrometheusRule")
    assert f'up{{job="{service["metadata"]["name"]}"}}' in yaml.safe_dump(rule, width=1000)
    assert yaml.safe_load(PROMETHEUS_RULE_FILE.read_text()) == rule


def test_the_image_is_this_version_and_runs_as_the_dockerfiles_user(base: Objects) -> None:
    image = container(base)["image"]
    assert image == f"handshake-obs:{version('handshake-obs')}"
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    uid = pod["securityContext"]["runAsUser"]
    assert f"USER {uid}:{uid}" in dockerfile
