"""Real faults of a ledger, made and undone while it is in use.

* SQLite: the database file and its WAL made immutable (``chattr +i``, as root): every
  commit fails with a disk I/O error while reads go on. The ``-shm`` file is left alone: a
  process with it mapped gets SIGBUS once it is immutable.
* PostgreSQL: a throwaway role that owns nothing loses INSERT / UPDATE / DELETE on the
  ledger's tables (a throwaway schema): every write is refused at once, reads go on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from handshake_obs.ledger import ledger_from_url

from .postgres import POSTGRES_URL, ledger_url, postgres_admin, throwaway_schema


def require_chattr() -> str:
    """The chattr binary, as root (else the test fails under CI, and is skipped outside)."""
    chattr = shutil.which("chattr")
    if chattr is None or os.geteuid() != 0:
        reason = "immutable files need chattr (e2fsprogs) and root"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return chattr


class SqliteFault:
    """Makes a SQLite ledger's files immutable, and writable again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._chattr = require_chattr()
        self._made: list[Path] = []

    def _files(self) -> list[Path]:
        wal = self.path.with_name(self.path.name + "-wal")
        return [p for p in (self.path, wal) if p.exists()]

    async def start(self) -> None:
        self._made = self._files()
        await self._chattr_all("+i")

    async def stop(self) -> None:
        if self._made:
            await self._chattr_all("-i")
            self._made = []

    async def _chattr_all(self, flag: str) -> None:
        process = await asyncio.create_subprocess_exec(self._chattr, flag, *map(str, self._made))
        if await process.wait() != 0:
            raise AssertionError(f"chattr {flag} failed")


@dataclass
class PostgresFault:
    """Takes a throwaway role's write privileges on the ledger's schema away, and back."""

    admin: psycopg.AsyncConnection[Any]
    schema: str
    role: str

    async def _privileges(self, verb: str, preposition: str) -> None:
        await self.admin.execute(
            sql.SQL("{} INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} {} {}").format(
                sql.SQL(verb),
                sql.Identifier(self.schema),
                sql.SQL(preposition),
                sql.Identifier(self.role),
            )
        )

    async def start(self) -> None:
        await self._privileges("REVOKE", "FROM")

    async def stop(self) -> None:
        await self._privileges("GRANT", "TO")


LedgerFault = SqliteFault | PostgresFault


@dataclass
class FaultyStore:
    """A ledger URL and the fault that can be made on it."""

    url: str
    fault: LedgerFault


@asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[FaultyStore]:
    path = tmp_path / "ledger.db"
    fault = SqliteFault(path)
    try:
        yield FaultyStore(f"sqlite:///{path}", fault)
    finally:
        await fault.stop()


@asynccontextmanager
async def postgres_store() -> AsyncIterator[FaultyStore]:
    """A throwaway schema, created by the admin, used through a throwaway role."""
    admin = await postgres_admin()
    role = f"hs_test_role_{uuid.uuid4().hex}"
    try:
        async with throwaway_schema(admin) as schema:
            async with ledger_from_url(ledger_url(schema)):
                pass  # the tables, created as the admin
            await admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            await admin.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )
            await admin.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )
            # The timeline's ids come from a sequence: writing a row needs it.
            await admin.execute(
                sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )
            fault = PostgresFault(admin, schema, role)
            await fault.stop()  # the write privileges
            parts = urlsplit(POSTGRES_URL)
            host = parts.hostname or "127.0.0.1"
            netloc = f"{role}@{host}:{parts.port or 5432}"
            url = parts._replace(netloc=netloc, query=f"schema={schema}").geturl()
            yield FaultyStore(url, fault)
    finally:
        await admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        await admin.close()
