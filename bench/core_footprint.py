"""What the core install costs a user's worker: disk and import time, against temporalio alone.

Builds the wheel, then three fresh virtualenvs, pinned by ``constraints.txt``:

* ``temporalio``: the SDK alone, what a Temporal worker has anyway (the baseline);
* ``core``: the handshake-obs wheel without extras, what a worker adds it with;
* ``all``: the wheel with every production extra (``[all]``, the image's).

Reports each one's installed size (the files under ``site-packages``) and distribution
count, and the import time of what a worker imports — ``temporalio.client`` and
``temporalio.worker`` in the baseline, the same plus ``HandshakePlugin`` and ``handoff``
with the core — each a new process, interleaved over rounds (rotating order), as medians
and the median of the per-round ratios.

    .venv/bin/python -m bench.core_footprint [--rounds 15] [--warmup 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

from ._common import machine_note, median, ratio, table

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"
SDK_IMPORT = "import temporalio.client, temporalio.worker"
CORE_IMPORT = f"{SDK_IMPORT}; from handshake_obs import HandshakePlugin, handoff"


def pip(python: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    subprocess.run(
        [str(python), "-m", "pip", "-q", "--disable-pip-version-check", *args],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def build_wheel(out: Path) -> Path:
    pip(Path(sys.executable), "wheel", "--no-deps", "-w", str(out), str(PROJECT_ROOT))
    (wheel,) = out.glob("handshake_obs-*.whl")
    return wheel


def make_venv(where: Path, requirement: str) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    python = where / "bin" / "python"
    pip(python, "install", "--constraint", str(CONSTRAINTS), requirement)
    return python


def footprint(python: Path) -> tuple[float, int]:
    """(MiB of files under site-packages, distributions installed), pip itself left out."""
    (site,) = (python.parent.parent / "lib").glob("python3*/site-packages")
    skipped = ("pip", "setuptools", "_distutils_hack")
    size = 0
    distributions = 0
    for entry in site.iterdir():
        if entry.name.split("-")[0] in skipped:
            continue
        if entry.name.endswith(".dist-info"):
            distributions += 1
        files = entry.rglob("*") if entry.is_dir() else [entry]
        size += sum(f.stat().st_size for f in files if f.is_file())
    return size / 2**20, distributions


def import_seconds(python: Path, statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(python), "-c", statement], check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wheel = build_wheel(root / "wheel")
        temporalio_pin = next(
            line for line in CONSTRAINTS.read_text().splitlines() if line.startswith("temporalio==")
        )
        pythons = {
            "temporalio": make_venv(root / "sdk", temporalio_pin),
            "core": make_venv(root / "core", str(wheel)),
            "all": make_venv(root / "all", f"{wheel}[all]"),
        }
        sizes = {name: footprint(python) for name, python in pythons.items()}
        imports = {
            "temporalio (baseline)": (pythons["temporalio"], SDK_IMPORT),
            "core": (pythons["core"], CORE_IMPORT),
        }
        for _ in range(args.warmup):
            for python, statement in imports.values():
                import_seconds(python, statement)
        times: dict[str, list[float]] = {name: [] for name in imports}
        names = list(imports)
        for n in range(args.rounds):
            for name in names[n % len(names) :] + names[: n % len(names)]:
                times[name].append(import_seconds(*imports[name]))
        per_round = [
            ratio(c, b) for c, b in zip(times["core"], times["temporalio (baseline)"], strict=True)
        ]
    base_size = sizes["temporalio"][0]
    print(machine_note())
    print(
        table(
            ["install", "site-packages MiB", "distributions", "size / temporalio"],
            [[n, s, d, ratio(s, base_size)] for n, (s, d) in sizes.items()],
        )
    )
    print()
    print(
        table(
            ["import", "median s", "min s", "max s"],
            [[n, median(t), min(t), max(t)] for n, t in times.items()],
        )
    )
    print(f"\ncore / baseline import time, median of per-round ratios: {median(per_round):.2f}")


if __name__ == "__main__":
    main()
