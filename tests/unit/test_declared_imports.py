"""Every package the code imports is declared: by the core install where the core imports it,
by an extra where only that extra's part does (``_extras.EXTRA_MODULES``)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from handshake_obs._extras import EXTRA_MODULES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SOURCE = PROJECT_ROOT / "src" / "handshake_obs"


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def _declared() -> tuple[set[str], set[str]]:
    """(the core's distributions, every extra's distributions)."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for group in project["optional-dependencies"].values() for r in group}
    return core, extras


def _imported_top_levels() -> dict[str, set[str]]:
    """Top-level module -> the source files that import it, third-party modules only."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "handshake_obs":
                    found.setdefault(top, set()).add(str(path.relative_to(SOURCE)))
    return found


def test_every_imported_package_is_declared_by_the_core_or_an_extra() -> None:
    distributions = importlib.metadata.packages_distributions()
    core, extras = _declared()
    extra_modules = {module.split(".")[0] for group in EXTRA_MODULES.values() for module in group}
    undeclared: list[str] = []
    for module, files in sorted(_imported_top_levels().items()):
        owners = {_name(d) for d in distributions.get(module, [])}
        assert owners, f"{module} (imported by {sorted(files)}) is not installed"
        allowed = core | extras if module in extra_modules else core
        if not owners & allowed:
            undeclared.append(f"{module} ({'/'.join(sorted(owners))}): {sorted(files)[:3]}")
    assert undeclared == [], "imported but not declared in pyproject.toml: " + "; ".join(undeclared)


def test_the_check_sees_the_imports_it_is_about() -> None:
    imported = _imported_top_levels()
    for module in ("temporalio", "google", "pydantic_core", "fastapi", "psycopg"):
        assert module in imported, module
