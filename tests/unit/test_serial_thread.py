"""The ledger's own thread: jobs run one at a time in the order given, each caller hears its
own result or exception, a failing job does not stop the thread, a cancelled caller's job
still runs, and a shut-down thread refuses new jobs after running the queued ones."""

from __future__ import annotations

import asyncio
import threading

import pytest

from handshake_obs.ledger.sqlite._serial_thread import SerialThread


async def test_jobs_run_in_order_on_one_thread_and_answer_their_callers() -> None:
    thread = SerialThread("serial-test")
    seen: list[tuple[int, str]] = []

    def job(n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * n

    try:
        results = await asyncio.gather(*(thread.call(job, n) for n in range(50)))
    finally:
        thread.shutdown()
    assert results == [n * n for n in range(50)]
    assert [n for n, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"serial-test"}


async def test_a_failing_job_answers_its_caller_and_the_next_job_runs() -> None:
    thread = SerialThread("serial-test")

    def fail() -> None:
        raise ValueError("this job fails")

    try:
        with pytest.raises(ValueError, match="this job fails"):
            await thread.call(fail)
        thread.post(fail)  # a posted job's failure has no caller: logged, and the thread goes on
        assert await thread.call(lambda: "still serving") == "still serving"
    finally:
        thread.shutdown()


async def test_a_cancelled_caller_s_job_still_runs() -> None:
    thread = SerialThread("serial-test")
    release, ran = threading.Event(), threading.Event()
    thread.post(lambda: release.wait(10))
    waiting = asyncio.ensure_future(thread.call(ran.set))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    try:
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await thread.call(lambda: None)  # everything queued before has run
    finally:
        thread.shutdown()
    assert ran.is_set()


async def test_shutdown_runs_what_is_queued_then_refuses_new_jobs() -> None:
    thread = SerialThread("serial-test")
    release = threading.Event()
    ran: list[int] = []
    thread.post(lambda: release.wait(10))
    for n in range(3):
        thread.post(lambda n=n: ran.append(n))  # type: ignore[misc]
    release.set()
    thread.shutdown()
    assert ran == [0, 1, 2]
    with pytest.raises(RuntimeError, match="shut down"):
        thread.post(lambda: None)
    with pytest.raises(RuntimeError, match="shut down"):
        await thread.call(lambda: None)
