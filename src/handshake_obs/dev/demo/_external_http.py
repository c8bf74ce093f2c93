"""A fake external system, over HTTP, as a non-Python service would be.

It receives the sidecar's HTTP handoffs and answers through the sidecar's completion gateway
with the bearer token: completes most, fails some with typed errors, reports progress on
some, and loses a few on purpose (the reaper then fails them).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_log = structlog.get_logger("handshake_obs.demo")

#: Typed errors the fake system fails with (the workflow sees these types).
DEMO_ERROR_TYPES: tuple[str, ...] = ("AgentRefused", "ValidationFailed", "QuotaExceeded")


@dataclass(frozen=True, slots=True)
class DemoMix:
    """How the fake external system treats what it receives (the rest completes)."""

    fail_ratio: float = 0.15
    lose_ratio: float = 0.05
    heartbeat_ratio: float = 0.3
    min_delay: float = 0.5
    max_delay: float = 8.0


class DemoExternalSystem:
    """An ASGI app (``app``) that accepts handoffs and answers them later."""

    def __init__(
        self, *, completion_token: str, mix: DemoMix, rng: random.Random, http: httpx.AsyncClient
    ) -> None:
        self._headers = {"authorization": f"Bearer {completion_token}"}
        self._mix = mix
        self._rng = rng
        self._http = http
        self._answers: set[asyncio.Task[None]] = set()
        self.app = Starlette(routes=[Route("/handoffs", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        task = asyncio.create_task(self._answer(body["callback_url"], body["handoff_id"]))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        return JSONResponse({"accepted": body["handoff_id"]}, status_code=202)

    async def _answer(self, callback: str, handoff_id: str) -> None:
        roll = self._rng.random()
        if roll < self._mix.lose_ratio:
            _log.info("demo: losing a handoff on purpose", handoff_id=handoff_id)
            return
        delay = self._rng.uniform(self._mix.min_delay, self._mix.max_delay)
        try:
            if self._rng.random() < self._mix.heartbeat_ratio:
                await asyncio.sleep(delay / 2)
                await self._post(f"{callback}/heartbeat", {"progress": {"percent": 50}})
                await asyncio.sleep(delay / 2)
            else:
                await asyncio.sleep(delay)
            if roll < self._mix.lose_ratio + self._mix.fail_ratio:
                await self._post(
                    f"{callback}/fail",
                    {
                        "error_type": self._rng.choice(DEMO_ERROR_TYPES),
                        "message": "the demo external system said no",
                        "non_retryable": True,
                    },
                )
            else:
                await self._post(f"{callback}/complete", {"result": {"answer": roll}})
        except httpx.HTTPError as err:
            _log.warning("demo: answer not delivered", handoff_id=handoff_id, error=str(err))

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        response = await self._http.post(url, json=body, headers=self._headers, timeout=30)
        if response.status_code >= 400:
            _log.warning("demo: gateway refused", url=url, status=response.status_code)

    async def close(self) -> None:
        """Drop the answers still waiting."""
        for task in list(self._answers):
            task.cancel()
        await asyncio.gather(*self._answers, return_exceptions=True)
