"""Validating custom resources offline against the Prometheus Operator's own CRDs.

The CRDs are vendored under ``tests/schemas/prometheus-operator/`` (see ``SOURCE.md``
there). The API server validates a custom resource against its CRD's ``openAPIV3Schema``
and drops fields the schema does not know; ``kubectl apply --validate=strict`` (the default
field validation of kubectl) refuses them. This check does what strict validation does: an
object schema with ``properties`` accepts no other key unless it says
``x-kubernetes-preserve-unknown-fields`` or gives ``additionalProperties`` itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "prometheus-operator"
#: kind -> the vendored CRD file.
CRDS = {
    "PrometheusRule": SCHEMAS / "monitoring.coreos.com_prometheusrules.yaml",
    "ServiceMonitor": SCHEMAS / "monitoring.coreos.com_servicemonitors.yaml",
}


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        strict = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in strict
            and "additionalProperties" not in strict
            and not strict.get("x-kubernetes-preserve-unknown-fields")
        ):
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def crd_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The strict ``openAPIV3Schema`` of ``kind`` at ``version``."""
    crd = yaml.safe_load(CRDS[kind].read_text())
    assert crd["spec"]["names"]["kind"] == kind
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
    return dict(_strict(schema))


def crd_errors(resource: dict[str, Any]) -> list[str]:
    """What the CRD of ``resource``'s kind finds wrong with it (empty: valid)."""
    group, _, version = resource["apiVersion"].partition("/")
    assert group == "monitoring.coreos.com", resource["apiVersion"]
    validator = jsonschema.Draft7Validator(crd_schema(resource["kind"], version))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(resource)
    ]
