"""The shipped nginx front (``deploy/nginx/handshake-obs-front.conf.template``): the methods
the proxy observes go through it, every other call straight to Temporal, and handoffs are
recorded and finished as without the front.

Real components: Debian's nginx filled in from the template, the proxy in this process, the
dev server, a plain Python worker and client (no handshake-obs in them) dialling nginx.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from handshake_obs import HandshakeConfig
from handshake_obs.proxy._methods import OBSERVED_METHODS

from .support.activities import ALL_ACTIVITIES, EXTERNAL
from .support.ports import free_port
from .support.processes import ManagedProcess, wait_until
from .support.tls_proxy import nginx
from .support.workflows import HandoffWorkflow
from .test_proxy import ProxyRig, proxy_for_tests

TEMPLATE = Path(__file__).parent.parent / "deploy" / "nginx" / "handshake-obs-front.conf.template"
PROXIED = re.compile(r"location = (\S+) \{ grpc_pass grpc://handshake_obs_proxy; \}")

_MAIN = """\
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{ worker_connections 64; }}
http {{
  log_format upstream '$request_uri $upstream_addr';
  access_log {root}/access.log upstream;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  include {front};
}}
"""


def test_the_front_sends_exactly_the_observed_methods_to_the_proxy() -> None:
    assert sorted(PROXIED.findall(TEMPLATE.read_text())) == sorted(OBSERVED_METHODS)


@dataclass
class Front:
    """nginx in front of the proxy and Temporal, and where each call went."""

    address: str
    access_log: Path

    def routes(self) -> dict[str, set[str]]:
        """Method path -> the upstream addresses nginx sent it to."""
        seen: dict[str, set[str]] = {}
        for line in self.access_log.read_text().splitlines():
            path, _, upstream = line.partition(" ")
            seen.setdefault(path, set()).add(upstream)
        return seen


@contextmanager
def _front(root: Path, temporal: str, proxy: str) -> Iterator[Front]:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    front = root / "front.conf"
    front.write_text(
        Template(TEMPLATE.read_text()).substitute(
            LISTEN_ADDRESS=f"127.0.0.1:{port}",
            TEMPORAL_ADDRESS=temporal,
            HANDSHAKE_PROXY_ADDRESS=proxy,
        )
    )
    config = root / "nginx.conf"
    config.write_text(_MAIN.format(root=root, front=front))
    argv = [nginx(), "-p", str(root), "-c", str(config), "-e", str(root / "error.log")]
    process = ManagedProcess("nginx", argv, log_dir=root, env=dict(os.environ))
    try:

        def listening() -> bool:
            process.assert_running()
            return (root / "nginx.pid").exists()

        wait_until(listening, timeout=20, what=lambda: f"nginx on {port}\n{process.log_tail()}")
        yield Front(f"127.0.0.1:{port}", root / "access.log")
    finally:
        process.stop()


@dataclass
class FrontRig(ProxyRig):
    """The proxy's rig, its worker and client dialling the front (``address``)."""

    front: Front
    temporal_address: str

    @property
    def proxy_address(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"


@pytest.fixture
async def rig(
    temporal_address: str, config: HandshakeConfig, tmp_path: Path
) -> AsyncIterator[FrontRig]:
    async with proxy_for_tests(temporal_address, config) as (proxy, ledger, registry):
        proxy_address = f"127.0.0.1:{proxy.port}"
        with _front(tmp_path / "nginx", temporal_address, proxy_address) as front:
            client = await Client.connect(front.address)  # only the front's routes observe
            task_queue = f"front-{uuid.uuid4()}"
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[HandoffWorkflow],
                activities=ALL_ACTIVITIES,
            ):
                yield FrontRig(
                    proxy,
                    ledger,
                    registry,
                    client,
                    task_queue,
                    front.address,
                    front=front,
                    temporal_address=temporal_address,
                )


async def test_through_the_front_a_handoff_is_recorded_completed_and_counted_once(
    rig: FrontRig,
) -> None:
    handle = await rig.start("hand_off_plain", payload="p")
    delivery = await EXTERNAL.receive(handle.id)
    record = await rig.ledger.find_by_token(delivery.task_token)
    assert record is not None
    assert record.is_pending
    assert record.target == "approval"

    await rig.client.get_async_activity_handle(task_token=delivery.task_token).complete("done")
    assert await handle.result() == {"result": "done"}
    finished = await rig.ledger.get(record.handoff_id)
    assert finished is not None
    assert finished.outcome is not None
    assert finished.outcome.value == "completed"
    assert (
        rig.sample("handshake_handoffs_finished_total", target="approval", outcome="completed") == 1
    )

    # The observed methods went to the proxy, the rest straight to Temporal.
    routes = rig.front.routes()
    service = "/temporal.api.workflowservice.v1.WorkflowService/"
    assert routes[service + "RespondActivityTaskCompleted"] == {rig.proxy_address}
    assert routes[service + "RespondWorkflowTaskCompleted"] == {rig.proxy_address}
    assert routes[service + "StartWorkflowExecution"] == {rig.temporal_address}
    bypassed = {path for path, upstreams in routes.items() if path not in OBSERVED_METHODS}
    assert bypassed, "some calls go straight to Temporal"
    assert all(routes[path] == {rig.temporal_address} for path in bypassed)


async def test_through_the_front_an_ordinary_activity_is_not_recorded(rig: FrontRig) -> None:
    handle = await rig.start("plain_result", payload=7)
    assert await handle.result() == {"result": {"echo": 7}}
    assert await rig.ledger.find_by_activity(None, handle.id, None, "1") is None
    assert rig.sample("handshake_handoffs_started_total", target="approval") == 0
