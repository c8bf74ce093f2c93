"""Closing the PostgreSQL ledger: the records handed to it before it closes, waiting for
their batch or for the record rule, are stored and answered; an operation after it closed
fails with a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

import pytest
import structlog

from handshake_obs._errors import LedgerError
from handshake_obs.ledger import PostgresLedger

from .support.postgres import POSTGRES_URL, throwaway_schema
from .test_ledger_contract import make_record

pytestmark = pytest.mark.postgres

#: Enough records that most of them wait for one of the batch's calls when the ledger closes.
RECORDS = 200


async def test_records_waiting_when_the_ledger_closes_are_stored_and_answered() -> None:
    async with throwaway_schema() as schema:
        ledger = PostgresLedger(POSTGRES_URL, schema=schema, pool_size=4)
        await ledger.open()
        taken = make_record()
        await ledger.record(taken)
        records = [make_record() for _ in range(RECORDS)]
        # A record of a token recorded already: its batch leaves it to the record rule, which
        # takes a connection only after the batch answered.
        again = dataclasses.replace(make_record(), task_token=taken.task_token)
        in_flight = [asyncio.ensure_future(ledger.record(r)) for r in [*records, again]]
        await asyncio.sleep(0)  # every record is handed over, the first calls have started
        await ledger.close()

        results = await asyncio.wait_for(asyncio.gather(*in_flight), 10)
        assert all(result.created for result in results[:-1])
        assert not results[-1].created
        assert results[-1].record == taken
        async with PostgresLedger(POSTGRES_URL, schema=schema) as reopened:
            for record in records:
                assert await reopened.get(record.handoff_id) == record


async def test_closing_waits_for_an_operation_in_flight_at_most_the_connect_timeout() -> None:
    async with throwaway_schema() as schema:
        ledger = PostgresLedger(POSTGRES_URL, schema=schema, connect_timeout_seconds=0.5)
        await ledger.open()
        stalled = asyncio.ensure_future(ledger._fetch("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)  # the statement is on the server
        started = time.monotonic()
        with structlog.testing.capture_logs() as logs:
            await ledger.close()
        assert 0.2 < time.monotonic() - started < 2.5
        assert not stalled.done()
        assert [(e["event"], e["operations"]) for e in logs if e["log_level"] == "warning"] == [
            ("closing the ledger with operations still running", 1)
        ]
        stalled.cancel()  # psycopg cancels the statement on the server
        with contextlib.suppress(asyncio.CancelledError, LedgerError):
            await stalled


async def test_an_operation_after_the_ledger_closed_fails_clearly() -> None:
    async with throwaway_schema() as schema:
        ledger = PostgresLedger(POSTGRES_URL, schema=schema)
        await ledger.open()
        await ledger.close()
        with pytest.raises(LedgerError, match="not open"):
            await ledger.record(make_record())
        with pytest.raises(LedgerError, match="not open"):
            await ledger.get("any")
