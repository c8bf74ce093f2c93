"""What the last line of defence against tokens in logs costs a log line, and a new token.

One typical handoff log line (413 characters of JSON) is rendered — ``json.dumps`` of its
event dict, what structlog's JSON renderer does, the baseline — and scrubbed of the known
tokens (``KnownTokens.scrub``) with 0, 64 and 512 realistic task tokens remembered (the
last is the limit). Each round times every variant over ``--lines`` lines, in an order that
rotates from round to round. The report gives, per variant, the median microseconds per
line, the interquartile range, and the median of the per-round ratios to the baseline; then
what remembering a token costs its caller (a queue insert), what indexing it costs the
rendering thread, the index's memory at the limit, and the load averages before and after.

    .venv/bin/python -m bench.log_scrubbing [--rounds 15] [--lines 2000]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import statistics
import time
import tracemalloc
from collections.abc import Callable

from handshake_obs._token_scrubbing import REMEMBERED_TOKENS, KnownTokens

from ._common import machine_note, median, ratio, table


def task_token() -> bytes:
    """A token shaped like Temporal's: a shared namespace prefix, then per-attempt ids."""
    return (
        b"\n$01a2343f-d45e-7c36-835a-af0b569c1dbd\x12'wf-"
        + secrets.token_hex(18).encode()
        + b"\x1a$"
        + secrets.token_hex(18).encode()
        + b" \x05(\x012\x011B\x11hand_off_explicitJ\x08\x08\x01\x10"
        + secrets.token_bytes(3)
    )


EVENT = {
    "event": "handoff finished", "handoff_id": "ho_" + "a" * 24,
    "workflow_id": "wf-" + "b" * 32, "run_id": "c" * 32, "activity_id": "1", "attempt": 1,
    "target": "agent", "token_fingerprint": "0d11683a560a", "outcome": "completed",
    "latency_seconds": 0.011, "level": "info", "logger": "handshake_obs.completion",
    "timestamp": "2026-12-02T00:55:29.069916Z",
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--lines", type=int, default=2000)
    args = parser.parse_args()
    load_before = os.getloadavg()
    line = json.dumps(EVENT)
    scrubbers = {}
    for count in (0, 64, REMEMBERED_TOKENS):
        known = KnownTokens()
        for _ in range(count):
            known.remember(task_token())
        scrubbers[count] = known
    variants: dict[str, Callable[[], object]] = {
        "render (json.dumps), baseline": lambda: json.dumps(EVENT),
        **{
            f"scrub, {count} tokens known": functools.partial(known.scrub, line)
            for count, known in scrubbers.items()
        },
    }
    names = list(variants)
    per_line: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            run = variants[name]
            started = time.perf_counter()
            for _ in range(args.lines):
                run()
            per_line[name].append((time.perf_counter() - started) / args.lines * 1e6)
    baseline = per_line[names[0]]
    rows = []
    for name in names:
        values = per_line[name]
        q1, _, q3 = statistics.quantiles(values, n=4)
        ratios = [ratio(v, b) for v, b in zip(values, baseline, strict=True)]
        rows.append([name, median(values), f"{q1:.1f} .. {q3:.1f}", median(ratios)])
    print(f"one log line of {len(line)} characters, {args.rounds} rounds of {args.lines} lines")
    print(table(["variant", "median us/line", "IQR us", "ratio to baseline"], rows))
    tokens = [task_token() for _ in range(REMEMBERED_TOKENS)]
    fresh = KnownTokens()
    started = time.perf_counter()
    for token in tokens:
        fresh.remember(token)  # what the caller (the event loop) pays
    remembered = time.perf_counter() - started
    started = time.perf_counter()
    for token in tokens:
        fresh.remember(token + b"!")
        fresh.scrub(line)  # what the rendering thread pays: index one token, scrub one line
    indexed = time.perf_counter() - started
    tracemalloc.start()
    traced = KnownTokens()
    for token in tokens:
        traced.remember(token)
    traced.scrub(line)
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(
        f"remember (caller): {remembered / len(tokens) * 1e6:.1f} us per token; "
        f"index a new token and scrub a line (rendering thread): "
        f"{indexed / len(tokens) * 1e3:.2f} ms; "
        f"index at the limit ({REMEMBERED_TOKENS} tokens): {memory / 2**20:.1f} MiB"
    )
    print(machine_note())
    load_after = os.getloadavg()
    print(f"load average before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()
