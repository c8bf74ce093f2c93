"""Type-checking a dashboard's JSON against Grafana's own published types, with ``tsc``.

The types are those of the npm package ``@grafana/schema`` (13.x), which Grafana generates
from the same schemas it validates dashboards with: the dashboard model
(``raw/dashboard/x/types.gen.d.ts``) and each panel plugin's ``Options`` and ``FieldConfig``
(``raw/composable/<panel>/panelcfg/x/``). ``package.json`` and ``package-lock.json`` pin
them and ``typescript``; ``scripts/setup`` installs them with ``npm ci``.

The dashboard is written out as TypeScript object literals, one per part, each annotated
with the type Grafana gives that part; ``tsc --strict`` then reports a missing field, a
value of the wrong type and (TypeScript's excess property check on literals) any key the
type does not have. Two judgements make JSON and the types meet, and they are written here:

* **Enum-typed fields.** The types declare some fields as TypeScript enums
  (``ThresholdsMode``, ``BigValueColorMode``...). A JSON document cannot hold an enum member,
  only its value, which is exactly what Grafana stores and reads. So every part is checked
  against ``Json<T>``: ``T`` with each string enum replaced by the union of its values
  (```${E}```) — any other string is still refused. Numeric enums need no mapping: a number
  literal of the enum is assignable to it.
* **Datasource-specific keys.** Grafana's types leave a query's keys to its datasource
  plugin (``targets: Record<string, unknown>``), and ``@grafana/schema`` carries no
  Prometheus types; a legacy annotation query of a Prometheus datasource keeps its query
  keys (``expr``, ``step``...) at its top level, where ``AnnotationQuery`` has none. Both are
  checked against :data:`PROMETHEUS_TYPES` below, written down from Grafana's Prometheus
  datasource (``packages/grafana-prometheus/src/dataquery.ts`` and its annotation editor),
  and only for parts whose datasource is of type ``prometheus``. No other key is allowed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = PROJECT_ROOT / "node_modules"
SCHEMA_PACKAGE = NODE_MODULES / "@grafana" / "schema"
_TYPES = SCHEMA_PACKAGE / "dist" / "types"
_PANELCFG = Path("panelcfg") / "x" / "types.gen"

#: The keys a Prometheus annotation query keeps at the annotation's top level.
PROMETHEUS_ANNOTATION_KEYS = frozenset(
    {
        "expr",
        "step",
        "titleFormat",
        "textFormat",
        "tagKeys",
        "useValueForTime",
        "seriesValueAsTimestamp",
    }
)

#: Grafana's Prometheus query and annotation keys, as TypeScript (see the module docstring).
PROMETHEUS_TYPES = """
interface PrometheusQuery extends DataQuery {
  expr: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  editorMode?: "code" | "builder";
  format?: "time_series" | "table" | "heatmap";
  legendFormat?: string;
  intervalFactor?: number;
  interval?: string;
}
interface PrometheusAnnotationKeys {
  expr: string;
  step?: string;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
  seriesValueAsTimestamp?: boolean;
}
"""

#: JSON's view of a type: string enums as the union of their values (module docstring).
JSON_OF = """
type Json<T> = T extends string
  ? `${T}`
  : T extends Array<infer U>
    ? Array<Json<U>>
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;
"""


def tsc() -> str:
    """``tsc`` from the pinned ``typescript``, or a failed test (never a skipped one)."""
    node = shutil.which("node")
    binary = NODE_MODULES / ".bin" / "tsc"
    if node is None:
        pytest.fail("node is missing: install the Debian packages nodejs and npm (scripts/setup)")
    if not binary.exists() or not SCHEMA_PACKAGE.exists():
        pytest.fail("the npm packages are missing: run `npm ci` (scripts/setup does)")
    return str(binary)


@dataclass(frozen=True)
class TypedPart:
    """One part of the dashboard and the type Grafana gives it."""

    name: str
    type: str
    value: Any


def _ts(value: Any) -> str:
    # JSON is a TypeScript expression; an empty object or list needs no help either.
    return json.dumps(value, indent=2, sort_keys=True)


def _is_prometheus(part: dict[str, Any]) -> bool:
    return (part.get("datasource") or {}).get("type") == "prometheus"


def typed_parts(dashboard: dict[str, Any]) -> list[TypedPart]:
    """The dashboard split into parts, each paired with its type.

    The dashboard itself keeps everything but what the parts below check on their own:
    each panel's ``options``, ``fieldConfig.defaults.custom`` and ``targets`` (typed by the
    panel's plugin and by its datasource), and a Prometheus annotation's query keys.
    """
    board = json.loads(json.dumps(dashboard))
    parts: list[TypedPart] = []
    for n, annotation in enumerate(board.get("annotations", {}).get("list", [])):
        keys = set(annotation) & PROMETHEUS_ANNOTATION_KEYS
        if keys and _is_prometheus(annotation):
            query = {key: annotation.pop(key) for key in sorted(keys)}
            parts.append(TypedPart(f"annotation_{n}_prometheus", "PrometheusAnnotationKeys", query))
    panels = [
        panel
        for top in board.get("panels", [])
        for panel in [top, *(top.get("panels") or [])]
        if panel.get("type") != "row"
    ]
    for panel in panels:
        kind, ident = panel["type"], panel["id"]
        if "options" in panel:
            parts.append(
                TypedPart(f"panel_{ident}_options", f"Json<{kind}.Options>", panel.pop("options"))
            )
        custom = panel.get("fieldConfig", {}).get("defaults", {}).pop("custom", None)
        if custom is not None:
            parts.append(TypedPart(f"panel_{ident}_custom", f"Json<{kind}.FieldConfig>", custom))
        for target in panel.pop("targets", []):
            assert _is_prometheus(target), (panel["title"], target)
            parts.append(
                TypedPart(f"panel_{ident}_query_{target['refId']}", "Json<PrometheusQuery>", target)
            )
        panel["targets"] = []
    return [TypedPart("dashboard", "Json<Dashboard>", board), *parts]


def typescript_module(dashboard: dict[str, Any]) -> str:
    """The TypeScript that ``tsc`` checks: imports, the mappings above, one const per part."""
    panel_kinds = sorted(
        {
            panel["type"]
            for top in dashboard.get("panels", [])
            for panel in [top, *(top.get("panels") or [])]
            if panel.get("type") != "row"
        }
    )
    lines = [
        f'import type {{ Dashboard }} from "{_TYPES / "raw" / "dashboard" / "x" / "types.gen"}";',
        f'import type {{ DataQuery }} from "{_TYPES / "common" / "common.gen"}";',
        *(
            f'import type * as {kind} from "{_TYPES / "raw" / "composable" / kind / _PANELCFG}";'
            for kind in panel_kinds
        ),
        JSON_OF,
        PROMETHEUS_TYPES,
    ]
    for part in typed_parts(dashboard):
        lines.append(f"export const {part.name}: {part.type} = {_ts(part.value)};")
    return "\n".join(lines) + "\n"


def type_errors_of(dashboards: dict[str, dict[str, Any]], workdir: Path) -> dict[str, list[str]]:
    """What ``tsc --strict`` finds wrong with each dashboard, by name, in one run of tsc."""
    workdir.mkdir(parents=True, exist_ok=True)
    sources = {}
    for name, board in dashboards.items():
        sources[name] = workdir / f"{name}.ts"
        sources[name].write_text(typescript_module(board))
    result = subprocess.run(
        [tsc(), "--strict", "--noEmit", "--target", "es2022", "--module", "commonjs",
         "--moduleResolution", "node10", *map(str, sources.values())],
        cwd=workdir, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = [line for line in result.stdout.splitlines() if ": error TS" in line]
    if result.returncode != 0 and not lines:
        raise AssertionError(f"tsc failed without a type error:\n{result.stdout}{result.stderr}")
    return {name: [line for line in lines if line.startswith(f"{name}.ts(")] for name in dashboards}


def type_errors(dashboard: dict[str, Any], workdir: Path) -> list[str]:
    """What ``tsc --strict`` finds wrong with ``dashboard`` (empty: it type-checks)."""
    return type_errors_of({"dashboard": dashboard}, workdir)["dashboard"]
