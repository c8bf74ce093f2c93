"""A fake external system: it receives handoff ids and answers through the completer."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import structlog

from .._completer import Completer
from .._errors import HandshakeError

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
    """Takes handoff ids off a queue and completes, fails, heartbeats or loses them."""

    def __init__(self, completer: Completer, *, mix: DemoMix, rng: random.Random) -> None:
        self._completer = completer
        self._mix = mix
        self._rng = rng
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serve the inbox until cancelled; answers still in progress are dropped."""
        try:
            while True:
                handoff_id = await self.inbox.get()
                task = asyncio.create_task(self._answer(handoff_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _answer(self, handoff_id: str) -> None:
        roll = self._rng.random()
        if roll < self._mix.lose_ratio:
            _log.info("demo: losing a token on purpose", handoff_id=handoff_id)
            return
        delay = self._rng.uniform(self._mix.min_delay, self._mix.max_delay)
        try:
            if self._rng.random() < self._mix.heartbeat_ratio:
                await asyncio.sleep(delay / 2)
                await self._completer.heartbeat(handoff_id, {"percent": 50})
                await asyncio.sleep(delay / 2)
            else:
                await asyncio.sleep(delay)
            if roll < self._mix.lose_ratio + self._mix.fail_ratio:
                await self._completer.fail(
                    handoff_id,
                    error_type=self._rng.choice(DEMO_ERROR_TYPES),
                    message="the demo external system said no",
                    non_retryable=True,
                )
            else:
                await self._completer.complete(handoff_id, {"answer": self._rng.randint(1, 100)})
        except HandshakeError as err:
            _log.warning("demo: answer not delivered", handoff_id=handoff_id, error=str(err))
