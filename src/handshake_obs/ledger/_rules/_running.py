"""Running a rule: each step is handed to the backend's executor, its answer sent back.

The synchronous runner is for executors that run a whole rule in one go (SQLite's writer
thread, the in-memory ledger); the asynchronous one awaits each step (PostgreSQL). Neither
opens a transaction: the caller runs the rule inside one, so that a rule that raises leaves
nothing behind. An operation that is a single step needs no transaction (its one statement
is atomic on its own): :func:`take_step` runs it alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from ._steps import Program, Returns, Step

_T = TypeVar("_T")


def run_program(program: Program[_T], execute: Callable[[Step], object]) -> _T:
    """Run ``program`` to its result, ``execute`` taking each of its steps."""
    try:
        answer: object = None
        while True:
            try:
                step = program.send(answer)
            except StopIteration as done:
                result: _T = done.value
                return result
            answer = execute(step)
    finally:
        program.close()


async def run_program_async(
    program: Program[_T], execute: Callable[[Step], Awaitable[object]]
) -> _T:
    """Run ``program`` to its result, awaiting ``execute`` on each of its steps."""
    try:
        answer: object = None
        while True:
            try:
                step = program.send(answer)
            except StopIteration as done:
                result: _T = done.value
                return result
            answer = await execute(step)
    finally:
        program.close()


def take_step(step: Returns[_T], execute: Callable[[Step], object]) -> _T:
    """``execute``'s answer to one step, typed by what the step returns."""
    return cast(_T, execute(cast(Step, step)))


async def take_step_async(step: Returns[_T], execute: Callable[[Step], Awaitable[object]]) -> _T:
    """``execute``'s answer to one step, typed by what the step returns."""
    return cast(_T, await execute(cast(Step, step)))
