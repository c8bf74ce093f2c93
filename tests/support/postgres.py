"""The PostgreSQL the tests use: 127.0.0.1:5432, database ``test``, a throwaway schema each.

An unreachable server fails the test with a clear message: it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

POSTGRES_URL = os.environ.get("HANDSHAKE_OBS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


async def postgres_admin() -> psycopg.AsyncConnection[Any]:
    """An autocommit connection to the test database, or a clear failure."""
    try:
        return await psycopg.AsyncConnection.connect(
            POSTGRES_URL, autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as err:
        reason = str(err)
    pytest.fail(
        f"PostgreSQL is not reachable at {POSTGRES_URL}: {reason}\n"
        "The postgres tests need a PostgreSQL server at 127.0.0.1:5432 with trust "
        "auth and a database named 'test' (or set HANDSHAKE_OBS_TEST_POSTGRES_URL).",
        pytrace=False,
    )


@asynccontextmanager
async def throwaway_schema(
    admin: psycopg.AsyncConnection[Any] | None = None,
) -> AsyncIterator[str]:
    """A fresh schema name ``hs_test_<uuid hex>``; the schema is dropped afterwards."""
    schema = f"hs_test_{uuid.uuid4().hex}"
    own = admin is None
    conn = admin if admin is not None else await postgres_admin()
    try:
        yield schema
    finally:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        if own:
            await conn.close()


def ledger_url(schema: str) -> str:
    """The ledger URL of a schema in the test database."""
    return f"{POSTGRES_URL}?schema={schema}"
