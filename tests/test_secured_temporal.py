"""handshake-obs against a secured Temporal, configured as every Temporal tool is.

A real TLS-terminating gRPC proxy (Debian's nginx: mTLS with the test's CA and an API key
check) stands in front of the dev server. The sidecar (``serve``, a process) and
``reap --once`` connect through it with nothing but the standard ``TEMPORAL_*`` variables or a
``temporal.toml`` profile: a handoff is completed and another reaped through it. A wrong
client certificate and a wrong API key each stop the process with a message that says so,
and no output ever holds the API key or a private key.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from handshake_obs.ledger import SqliteLedger

from .support.sidecar import PROJECT_ROOT, ExternalReceiver, running_sidecar
from .support.tls_proxy import API_KEY, SecuredTemporal, secured_temporal
from .support.workflows import SidecarCall, SidecarWorkflow

#: Ask the gateway's answer to come within this (the external system never answers "lost").
DEADLINE_SECONDS = 2


@pytest.fixture
def secured(tmp_path: Path, temporal_address: str) -> Iterator[SecuredTemporal]:
    with secured_temporal(tmp_path, temporal_address) as proxy:
        yield proxy


def targets_file(path: Path, url: str) -> Path:
    path.write_text(
        "[[targets]]\n"
        f'name = "billing"\nurl = "{url}"\ndeadline_seconds = 300\n\n'
        "[[targets]]\n"
        f'name = "lost"\nurl = "{url}"\ndeadline_seconds = {DEADLINE_SECONDS}\n'
    )
    return path


def temporal_toml(path: Path, secured: SecuredTemporal) -> Path:
    """A ``temporal.toml`` whose ``secured`` profile passes the proxy (and a default that
    does not: the profile has to be the one read)."""
    pki = secured.pki
    path.write_text(
        "[profile.default]\n"
        'address = "127.0.0.1:1"\n\n'
        "[profile.secured]\n"
        f'address = "{secured.address}"\n'
        'namespace = "default"\n'
        f'api_key = "{secured.api_key}"\n\n'
        "[profile.secured.tls]\n"
        f'server_name = "temporal.test"\n'
        f'server_ca_cert_path = "{pki.ca}"\n'
        f'client_cert_path = "{pki.client_cert}"\n'
        f'client_key_path = "{pki.client_key}"\n'
    )
    return path


def existing_ledger_url(tmp_path: Path) -> str:
    """A SQLite ledger created beforehand: ``reap`` refuses one that does not exist."""
    path = tmp_path / "ledger.db"
    if not path.exists():
        asyncio.run(_create_ledger(path))
    return f"sqlite:///{path}"


async def _create_ledger(path: Path) -> None:
    async with SqliteLedger(path):
        pass


def clean_environment() -> dict[str, str]:
    """This process's environment without any Temporal or handshake-obs variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "HANDSHAKE_"))}


def handshake_obs(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handshake_obs", "--log-json", *argv],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


def assert_no_secret(output: str, secured: SecuredTemporal, *keys: str) -> None:
    for secret in (API_KEY, *keys):
        assert secret not in output, "an API key was printed"
    for line in secured.pki.private_keys():
        assert line not in output, "private key material was printed"


async def start(client: Client, workflows: str, task_queue: str, target: str) -> str:
    handle = await client.start_workflow(
        SidecarWorkflow.run,
        SidecarCall(
            activity="handshake.http_handoff",
            task_queue=task_queue,
            argument={"target": target, "payload": {"n": 1}},
        ),
        id=f"secured-{uuid.uuid4()}",
        task_queue=workflows,
    )
    return handle.id


async def test_the_sidecar_and_the_reaper_work_through_a_tls_proxy_with_standard_settings(
    tmp_path: Path,
    secured: SecuredTemporal,
    receiver: ExternalReceiver,
    plain_client: Client,
    workflows: str,
) -> None:
    targets = targets_file(tmp_path / "targets.toml", receiver.url)
    sidecar_env = {
        **clean_environment(),
        **secured.environment(),
        "HANDSHAKE_CONFIG_FILE": str(targets),
        # The reaping is left to `reap --once` below.
        "HANDSHAKE_REAPER_INTERVAL_SECONDS": "3600",
    }
    async with running_sidecar(tmp_path, None, extra_env=sidecar_env) as sidecar:
        assert "HANDSHAKE_TEMPORAL_ADDRESS" not in sidecar.env
        # Completed: handed off through the sidecar's worker, answered through its gateway.
        completed_id = await start(plain_client, workflows, sidecar.task_queue, "billing")
        delivery = await receiver.receive()
        async with sidecar.client() as http:
            response = await http.post(
                f"{delivery.body['callback_url']}/complete", json={"result": "paid"}
            )
        assert response.status_code == 200, response.text
        result = await plain_client.get_workflow_handle(completed_id).result()
        assert result == {"result": "paid"}

        # Reaped: nobody answers; `reap --once` reads Temporal from a temporal.toml profile.
        lost_id = await start(plain_client, workflows, sidecar.task_queue, "lost")
        lost = await receiver.receive()
        assert lost.body["workflow_id"] == lost_id
        await asyncio.sleep(DEADLINE_SECONDS + 0.5)
        reap_env = {
            **clean_environment(),
            "TEMPORAL_CONFIG_FILE": str(temporal_toml(tmp_path / "temporal.toml", secured)),
            "TEMPORAL_PROFILE": "secured",
            "HANDSHAKE_LEDGER_URL": sidecar.ledger_url,
            "HANDSHAKE_CONFIG_FILE": str(targets),
        }
        reaped = handshake_obs("reap", "--once", env=reap_env)
        output = reaped.stdout + reaped.stderr
        assert reaped.returncode == 0, output
        assert "1 handoff(s) reaped" in reaped.stdout, output
        assert lost.body["handoff_id"] in reaped.stdout
        result = await plain_client.get_workflow_handle(lost_id).result()
        assert result["error_type"] == "HandoffDeadlineExceeded", result
        assert_no_secret(output, secured)
    assert_no_secret(sidecar.logs(), secured)
    assert "deprecated" not in sidecar.logs()


@pytest.mark.parametrize(
    ("change", "meaning"),
    [
        (
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "rogue_client_cert",
             "TEMPORAL_TLS_CLIENT_KEY_PATH": "rogue_client_key"},
            "the server refused the TLS client certificate",
        ),
        (
            {"TEMPORAL_API_KEY": "hs-wrong-api-key-0c1d2e3f"},
            "the server refused the credentials: check the API key (TEMPORAL_API_KEY)",
        ),
    ],
    ids=["wrong-client-certificate", "wrong-api-key"],
)  # fmt: skip
def test_a_wrong_certificate_or_api_key_fails_clearly_and_prints_no_secret(
    tmp_path: Path, secured: SecuredTemporal, change: dict[str, str], meaning: str
) -> None:
    paths = {
        "rogue_client_cert": str(secured.pki.rogue_client_cert),
        "rogue_client_key": str(secured.pki.rogue_client_key),
    }
    env = {
        **clean_environment(),
        **secured.environment(**{k: paths.get(v, v) for k, v in change.items()}),
        "HANDSHAKE_LEDGER_URL": existing_ledger_url(tmp_path),
        "HANDSHAKE_LISTEN_ADDRESS": "127.0.0.1:0",
    }
    for command in (["reap", "--once"], ["serve"]):
        result = handshake_obs(*command, env=env)
        output = result.stdout + result.stderr
        assert result.returncode == 2, (command, output)
        assert f"cannot reach Temporal at {secured.address}" in result.stderr, output
        assert meaning in result.stderr, output
        assert_no_secret(output, secured, "hs-wrong-api-key-0c1d2e3f")


def test_the_right_settings_pass_the_proxy_and_none_pass_without_tls(
    secured: SecuredTemporal, tmp_path: Path
) -> None:
    """The proxy really is in the way: the same client without TLS is refused, clearly."""
    env = {
        **clean_environment(),
        "TEMPORAL_ADDRESS": secured.address,
        "HANDSHAKE_LEDGER_URL": existing_ledger_url(tmp_path),
    }
    result = handshake_obs("reap", "--once", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TLS is on at one end only" in result.stderr, result.stderr
    result = handshake_obs("reap", "--once", env={**env, **secured.environment()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 handoff(s) reaped" in result.stdout
