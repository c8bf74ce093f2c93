"""The OpenAPI spec: committed and current, served as committed, and schemathesis fuzzing the
running sidecar against it finds no server error and no response that violates it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from handshake_obs.sidecar.openapi import render

from .support.sidecar import COMPLETION_TOKEN, PROJECT_ROOT, running_sidecar

COMMITTED = PROJECT_ROOT / "docs" / "openapi.json"


def test_committed_openapi_spec_is_current() -> None:
    assert COMMITTED.read_text() == render(), (
        "docs/openapi.json is stale: python -m handshake_obs.sidecar.openapi > docs/openapi.json"
    )


def schemathesis_cli() -> str:
    found = Path(sys.executable).parent / "st"
    return str(found) if found.exists() else (shutil.which("st") or "st")


def run_schemathesis(url: str, report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            schemathesis_cli(), "run", f"{url}/openapi.json",
            "--header", f"Authorization: Bearer {COMPLETION_TOKEN}",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_headers_conformance,response_schema_conformance",
            "--max-examples", "40",
            "--seed", "20261123",
            "--request-timeout", "30",
            "--report", "junit", "--report-junit-path", str(report),
        ],
        capture_output=True, text=True, timeout=600, check=False, cwd=PROJECT_ROOT,
    )  # fmt: skip


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    tmp_path: Path, temporal_address: str
) -> None:
    async with running_sidecar(tmp_path, temporal_address) as sidecar:
        async with httpx.AsyncClient(base_url=sidecar.url) as http:
            served = (await http.get("/openapi.json")).json()
        assert served == json.loads(COMMITTED.read_text())
        result = await asyncio.to_thread(run_schemathesis, sidecar.url, tmp_path / "junit.xml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
