"""CPU time by part of this process (Linux ``/proc``), to say where a slowdown goes.

Parts: the event loop's thread (``main``), the SQLite ledger's threads (``ledger``), the log
writer's thread (``logs``), every other thread of this process (the Temporal SDK's Rust core,
gRPC: ``other``), and the child processes (the Temporal dev server: ``server``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_LEDGER_THREAD_PREFIX = "handshake-ledger"
_LOG_WRITER_THREAD = "handshake-log-writer"


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Cumulative CPU seconds of each part at one instant."""

    main: float
    ledger: float
    logs: float
    process: float
    server: float

    def __sub__(self, earlier: CpuSample) -> CpuSample:
        return CpuSample(
            main=self.main - earlier.main,
            ledger=self.ledger - earlier.ledger,
            logs=self.logs - earlier.logs,
            process=self.process - earlier.process,
            server=self.server - earlier.server,
        )

    @property
    def other(self) -> float:
        """This process's threads other than the event loop, the ledger and the logs."""
        return self.process - self.main - self.ledger - self.logs


def sample() -> CpuSample:
    """CPU seconds used so far by each part (threads that ended are no longer counted
    under ``ledger``; measure while the ledger is open)."""
    ledger = logs = main = 0.0
    for thread in threading.enumerate():
        if thread.native_id is None:
            continue
        seconds = _stat_seconds(Path(f"/proc/self/task/{thread.native_id}/stat"))
        if thread is threading.main_thread():
            main = seconds
        elif thread.name.startswith(_LEDGER_THREAD_PREFIX):
            ledger += seconds
        elif thread.name == _LOG_WRITER_THREAD:
            logs += seconds
    process = _stat_seconds(Path("/proc/self/stat"))
    server = sum(_stat_seconds(Path(f"/proc/{pid}/stat")) for pid in _children())
    return CpuSample(main=main, ledger=ledger, logs=logs, process=process, server=server)


def postgres_seconds() -> float:
    """CPU seconds used so far by the processes of this machine's PostgreSQL server (its
    backends come and go: sample while the connections measured are open)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if command in ("postgres", "postmaster"):
            total += _stat_seconds(proc / "stat")
    return total


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def _stat_seconds(path: Path) -> float:
    """utime + stime of a /proc stat file, in seconds (0 if it vanished)."""
    try:
        text = path.read_text()
    except OSError:
        return 0.0
    # Fields after the command name (which may hold spaces) start at field 3, "state";
    # utime and stime are fields 14 and 15.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS
