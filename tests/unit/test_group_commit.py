"""The SQLite ledger's group commit, on a real SQLite file: rules that queue share a
transaction, a rule that raises undoes only its own writes (the batch runs again, in
savepoints, and each rule's writes stay once), a failed commit fails them all, and nobody
hears a result before its commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import pytest
import structlog

from handshake_obs.ledger.sqlite._group_commit import MAX_BATCH, GroupCommit
from handshake_obs.ledger.sqlite._serial_thread import SerialThread

_R = TypeVar("_R")


class Store:
    """One file, the writer's connection (its COMMITs counted) and its one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread = SerialThread("group-commit-test")
        self.conn = self._on_thread(self._connect)
        self.commits = 0
        self.statements: list[str] = []
        self.closed = False
        self.group = GroupCommit(self.thread, lambda: self.conn)

    def _on_thread(self, fn: Callable[[], _R]) -> _R:
        """``fn()`` run on the writer thread, waited for here."""
        done: Future[_R] = Future()

        def job() -> None:
            try:
                done.set_result(fn())
            except BaseException as err:  # noqa: BLE001 - the waiting test hears it
                done.set_exception(err)

        self.thread.post(job)
        return done.result(timeout=10)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE item (name TEXT PRIMARY KEY, parent INTEGER REFERENCES parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.execute("INSERT INTO parent (id) VALUES (1)")
        conn.execute("CREATE TABLE tally (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO tally (n) VALUES (0)")
        conn.set_trace_callback(self._traced)
        return conn

    def _traced(self, statement: str) -> None:
        self.statements.append(statement)
        if statement == "COMMIT":
            self.commits += 1

    def names(self) -> set[str]:
        """What another connection sees committed."""
        with sqlite3.connect(self.path) as reader:
            return {name for (name,) in reader.execute("SELECT name FROM item")}

    def tally(self) -> int:
        with sqlite3.connect(self.path) as reader:
            (n,) = reader.execute("SELECT n FROM tally").fetchone()
            return int(n)

    def close(self) -> None:
        """Close the connection and shut the writer thread down (once)."""
        if not self.closed:
            self.closed = True
            self._on_thread(self.conn.close)
            self.thread.shutdown()

    def hold(self) -> threading.Event:
        """Keep the writer thread busy until the returned event is set."""
        release = threading.Event()
        self.thread.post(lambda: release.wait(10))
        return release

    async def in_one_batch(
        self, *bodies: Callable[[sqlite3.Connection], object]
    ) -> list[object | BaseException]:
        """``bodies`` queued while the writer is held, so that they share a batch: their
        answers, or what they raised."""
        release = self.hold()
        runs = [asyncio.ensure_future(self.group.run(body)) for body in bodies]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(*runs, return_exceptions=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "group.db")
    yield store
    store.close()


def insert(name: str, parent: int = 1) -> Callable[[sqlite3.Connection], str]:
    def body(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO item (name, parent) VALUES (?, ?)", (name, parent))
        return name

    return body


def failing(name: str) -> Callable[[sqlite3.Connection], str]:
    def body(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO item (name, parent) VALUES (?, 1)", (name,))
        raise LookupError(f"{name} refused")

    return body


async def test_rules_that_queued_meanwhile_commit_in_one_transaction(store: Store) -> None:
    release = store.hold()
    names = [f"item-{n}" for n in range(50)]
    runs = [asyncio.ensure_future(store.group.run(insert(name))) for name in names]
    await asyncio.sleep(0.05)
    release.set()
    assert await asyncio.gather(*runs) == names
    assert store.names() == set(names)
    assert store.commits == 1


async def test_a_batch_takes_at_most_max_batch_rules(store: Store) -> None:
    release = store.hold()
    runs = [
        asyncio.ensure_future(store.group.run(insert(f"item-{n}"))) for n in range(MAX_BATCH + 1)
    ]
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(*runs)
    assert store.commits == 2
    assert len(store.names()) == MAX_BATCH + 1


async def test_a_rule_that_raises_undoes_only_its_own_writes(store: Store) -> None:
    release = store.hold()
    good = asyncio.ensure_future(store.group.run(insert("kept")))
    bad = asyncio.ensure_future(store.group.run(failing("undone")))
    after = asyncio.ensure_future(store.group.run(insert("kept too")))
    await asyncio.sleep(0.05)
    release.set()
    assert await good == "kept"
    with pytest.raises(LookupError, match="undone refused"):
        await bad
    assert await after == "kept too"
    assert store.names() == {"kept", "kept too"}
    assert store.commits == 1


def count_up(runs: list[str], name: str) -> Callable[[sqlite3.Connection], int]:
    """Adds one to the tally and answers what it read: a rule whose second run must not
    count twice."""

    def body(conn: sqlite3.Connection) -> int:
        runs.append(name)
        conn.execute("UPDATE tally SET n = n + 1")
        (n,) = conn.execute("SELECT n FROM tally").fetchone()
        return int(n)

    return body


async def test_a_batch_with_no_rule_raising_takes_no_savepoint(store: Store) -> None:
    release = store.hold()
    runs = [asyncio.ensure_future(store.group.run(insert(f"item-{n}"))) for n in range(10)]
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(*runs)
    assert not [s for s in store.statements if "SAVEPOINT" in s]
    assert store.commits == 1


async def test_a_batch_run_again_keeps_each_rules_writes_once(store: Store) -> None:
    release = store.hold()
    runs: list[str] = []
    first = asyncio.ensure_future(store.group.run(count_up(runs, "first")))
    bad = asyncio.ensure_future(store.group.run(failing("undone")))
    second = asyncio.ensure_future(store.group.run(count_up(runs, "second")))
    await asyncio.sleep(0.05)
    release.set()
    # The answers are those of the run that committed: one each, in queue order.
    assert await first == 1
    with pytest.raises(LookupError, match="undone refused"):
        await bad
    assert await second == 2
    assert runs == ["first", "first", "second"]  # the second rule had not run before
    assert store.tally() == 2
    assert store.names() == set()
    assert store.commits == 1


async def test_a_rule_alone_that_raises_leaves_nothing_and_the_next_commits(
    store: Store,
) -> None:
    with pytest.raises(LookupError, match="alone refused"):
        await store.group.run(failing("alone"))
    assert store.names() == set()
    assert store.commits == 0
    assert await store.group.run(insert("next")) == "next"
    assert store.names() == {"next"}


async def test_a_failed_commit_fails_every_rule_of_its_batch_and_keeps_nothing(
    store: Store,
) -> None:
    release = store.hold()
    # A deferred foreign key is checked at COMMIT: this batch's commit fails.
    runs = [
        asyncio.ensure_future(store.group.run(insert("fine"))),
        asyncio.ensure_future(store.group.run(insert("orphan", parent=99))),
    ]
    await asyncio.sleep(0.05)
    release.set()
    for run in runs:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await run
    assert store.names() == set()
    # The connection is usable again: the next rule commits on its own.
    assert await store.group.run(insert("later")) == "later"
    assert store.names() == {"later"}


async def test_nobody_hears_a_result_before_its_commit_is_visible(store: Store) -> None:
    async def record_and_look(name: str) -> bool:
        await store.group.run(insert(name))
        return name in store.names()  # another connection: only committed rows

    assert all(await asyncio.gather(*(record_and_look(f"item-{n}") for n in range(30))))


async def test_after_the_writer_shut_down_a_rule_is_refused(store: Store) -> None:
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        await store.group.run(insert("late"))


def insert_together(
    ran: list[list[str]],
) -> Callable[
    [sqlite3.Connection, Sequence[Callable[[sqlite3.Connection], object]]], dict[int, object]
]:
    """Writes the batch's :class:`Named` bodies as one ``executemany``, noting their names."""

    def together(
        conn: sqlite3.Connection, bodies: Sequence[Callable[[sqlite3.Connection], object]]
    ) -> dict[int, object]:
        named = {place: body for place, body in enumerate(bodies) if isinstance(body, Named)}
        ran.append([body.name for body in named.values()])
        conn.executemany(
            "INSERT INTO item (name, parent) VALUES (?, 1)", [(b.name,) for b in named.values()]
        )
        return {place: f"{body.name} together" for place, body in named.items()}

    return together


class Named:
    """An insert that a batch may write with others; alone, it inserts itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, conn: sqlite3.Connection) -> str:
        return insert(self.name)(conn)


async def test_bodies_run_together_first_and_the_others_after_in_order(store: Store) -> None:
    ran: list[list[str]] = []
    store.group.together = insert_together(ran)
    results = await store.in_one_batch(Named("a"), insert("alone"), Named("b"))
    assert results == ["a together", "alone", "b together"]
    assert ran == [["a", "b"]]
    assert store.names() == {"a", "alone", "b"}
    assert store.commits == 1


async def test_a_batch_whose_together_raises_runs_again_each_body_on_its_own(
    store: Store,
) -> None:
    ran: list[list[str]] = []
    store.group.together = insert_together(ran)
    # "taken" is inserted twice by the batch's together: the primary key refuses it.
    results = await store.in_one_batch(Named("taken"), Named("taken"), Named("fine"))
    assert results[0] == "taken"
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert results[2] == "fine"
    assert ran == [["taken", "taken", "fine"]]  # once: the second run is without it
    assert store.names() == {"taken", "fine"}
    assert store.commits == 1


async def test_a_batch_of_one_runs_its_body_without_together(store: Store) -> None:
    ran: list[list[str]] = []
    store.group.together = insert_together(ran)
    assert await store.group.run(Named("lone")) == "lone"
    assert ran == []


async def test_the_committed_hook_runs_after_each_commit_on_the_thread(tmp_path: Path) -> None:
    seen: list[tuple[int, str]] = []
    store = Store(tmp_path / "hooked.db")
    try:
        store.group = GroupCommit(
            store.thread,
            lambda: store.conn,
            committed=lambda _: seen.append((store.commits, threading.current_thread().name)),
        )
        await store.group.run(insert("one"))
        with pytest.raises(LookupError):
            await store.group.run(failing("none"))  # rolled back: no commit, no call
        await store.group.run(insert("two"))
        assert seen == [(1, "group-commit-test"), (2, "group-commit-test")]
    finally:
        store.close()


async def test_a_committed_hook_that_raises_leaves_the_batch_answered(tmp_path: Path) -> None:
    store = Store(tmp_path / "hooked.db")

    def broken(_: sqlite3.Connection) -> None:
        raise RuntimeError("hook broke")

    try:
        store.group = GroupCommit(store.thread, lambda: store.conn, committed=broken)
        with structlog.testing.capture_logs() as logs:
            assert await store.group.run(insert("kept")) == "kept"
        assert store.names() == {"kept"}
        assert [e["event"] for e in logs] == ["after a ledger commit"]
    finally:
        store.close()
