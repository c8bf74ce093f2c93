"""Timing the sidecar's inventory API and status page over a ledger, in process.

The sidecar's own ASGI application answers through ``httpx.ASGITransport``: each request
runs the route, its ledger reads and the rendering, without a socket (what a ledger of any
size adds is what is measured).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry

from handshake_obs import Handshake
from handshake_obs.sidecar import SidecarRuntime, SidecarSettings, create_app

from ._common import median

#: The inventory's first page as ``handshake-obs pending`` and the API's default ask for it.
INVENTORY_FIRST_PAGE = "/v1/handoffs?limit=50"
#: The same, pending handoffs only (the status page's oldest list).
PENDING_FIRST_PAGE = "/v1/handoffs?state=pending&limit=50"
STATUS_PAGE = "/"


@dataclass(frozen=True, slots=True)
class PageTimes:
    """Median milliseconds of each page."""

    inventory_ms: float
    pending_page_ms: float
    status_ms: float
    #: Fastest and slowest status page.
    status_range: tuple[float, float]


async def time_pages(handshake: Handshake, repeat: int) -> PageTimes:
    """Median milliseconds of the inventory's first page (any state, pending only) and the
    status page, each asked ``repeat`` times after one unmeasured request."""
    runtime = SidecarRuntime(
        config=handshake.config,
        settings=SidecarSettings(),
        handshake=handshake,
        registry=CollectorRegistry(),
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        times, ranges = {}, {}
        for path in (INVENTORY_FIRST_PAGE, PENDING_FIRST_PAGE, STATUS_PAGE):
            (await client.get(path)).raise_for_status()
            taken = []
            for _ in range(repeat):
                started = time.perf_counter()
                (await client.get(path)).raise_for_status()
                taken.append((time.perf_counter() - started) * 1000)
            times[path], ranges[path] = median(taken), (min(taken), max(taken))
    return PageTimes(
        times[INVENTORY_FIRST_PAGE],
        times[PENDING_FIRST_PAGE],
        times[STATUS_PAGE],
        ranges[STATUS_PAGE],
    )
