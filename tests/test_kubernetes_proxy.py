"""The proxy's Kubernetes manifests (``deploy/kubernetes/proxy``) are valid, strictly, and
run the proxy the way docs/proxy.md says: listening in the pod, on the shared ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

PROXY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes" / "proxy"


def objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((PROXY / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources"}, "keep it plain"
    return [
        doc
        for resource in kustomization["resources"]
        for doc in yaml.safe_load_all((PROXY / resource).read_text())
        if doc
    ]


def test_the_proxy_manifests_validate_against_kubernetes() -> None:
    errors = []
    for obj in objects():
        for version in ("1.31.0", kubernetes_validate.latest_version()):
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                errors.append(f"{obj['kind']} ({version}): {err.message}")
    assert errors == []


def test_the_proxy_listens_in_the_pod_and_records_on_the_shared_ledger() -> None:
    (deployment,) = [o for o in objects() if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["proxy"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HANDSHAKE_PROXY_LISTEN_ADDRESS"]["value"] == "0.0.0.0:7234"
    assert (
        env["HANDSHAKE_LEDGER_URL"]["valueFrom"]["secretKeyRef"]["name"] == "handshake-obs-ledger"
    )
    assert "HANDSHAKE_PROXY_ASYNC_ACTIVITIES" in env
    (service,) = [o for o in objects() if o["kind"] == "Service"]
    assert {p["port"] for p in service["spec"]["ports"]} == {7234, 9465}
