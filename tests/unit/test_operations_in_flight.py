"""The PostgreSQL ledger's count of operations in flight, which closing waits on: every
waiter hears when none is left, operations that start meanwhile are waited for too, and a
wait ends at its timeout."""

from __future__ import annotations

import asyncio

from handshake_obs.ledger.postgres._in_flight import OperationsInFlight


async def operation(in_flight: OperationsInFlight, seconds: float) -> None:
    with in_flight.one():
        await asyncio.sleep(seconds)


async def test_with_none_in_flight_it_is_settled_at_once() -> None:
    assert await OperationsInFlight().settled(0)


async def test_every_waiter_hears_when_the_last_operation_ends() -> None:
    in_flight = OperationsInFlight()
    running = asyncio.ensure_future(operation(in_flight, 0.05))
    await asyncio.sleep(0)
    assert len(in_flight) == 1
    waits = await asyncio.wait_for(
        asyncio.gather(in_flight.settled(5), in_flight.settled(5)), timeout=2
    )
    assert list(waits) == [True, True]
    assert len(in_flight) == 0
    await running


async def test_an_operation_starting_while_others_finish_is_waited_for() -> None:
    in_flight = OperationsInFlight()
    first = asyncio.ensure_future(operation(in_flight, 0.05))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(in_flight.settled(5))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(operation(in_flight, 0.1))  # overlaps the first
    await first
    await asyncio.sleep(0)
    assert not waiting.done()
    assert await asyncio.wait_for(waiting, timeout=2)
    assert second.done()


async def test_a_wait_ends_at_its_timeout_with_operations_still_running() -> None:
    in_flight = OperationsInFlight()
    running = asyncio.ensure_future(operation(in_flight, 5))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await in_flight.settled(0.1)
    assert 0.1 <= loop.time() - started < 1
    assert len(in_flight) == 1
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert len(in_flight) == 0
