"""``python -m benchmarks [NAME ...]`` — what ``make bench`` runs: each benchmark in turn, or the named ones.

A benchmark is a package ``benchmarks/<name>/`` with a ``__main__.py``; it is found by
looking, so one added later needs no line here (``ORDER`` only says which go first).
Each runs as its own ``python -m benchmarks.<name>`` process, one after another (they
would disturb each other's figures side by side), and reads its settings from the
environment: ``BENCH_QUICK=1`` makes every one a short smoke run. Names come from the
command line or from ``BENCH`` (comma-separated: ``make bench BENCH=events,memory``).
Exit status: 0 when every benchmark ran, else 1 (2 for an unknown name).
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ORDER = ("gateway", "events", "failfast", "memory", "capacity")  # the rest follow by name
NOT_BENCHMARKS = frozenset({"common"})


def available(directory: Path = PACKAGE_DIR) -> list[str]:
    """The benchmarks in ``directory``: sub-packages with a ``__main__.py``, in ``ORDER`` then by name."""
    found = {
        module.name
        for module in pkgutil.iter_modules([str(directory)])
        if module.ispkg and module.name not in NOT_BENCHMARKS and (directory / module.name / "__main__.py").exists()
    }
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def chosen(requested: Iterable[str], known: Sequence[str]) -> list[str]:
    """The requested names (all when none), in the order given; ValueError names an unknown one."""
    names = [name.strip() for part in requested for name in part.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return list(dict.fromkeys(names)) or list(known)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in args):
        print(__doc__)
        print("benchmarks here:", ", ".join(available()))
        return 0
    known = available()
    try:
        names = chosen(args or [os.environ.get("BENCH", "")], known)
    except ValueError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2
    outcomes: dict[str, tuple[int, float]] = {}
    for name in names:
        print(f"\n[bench] === {name} ===", file=sys.stderr, flush=True)
        started = time.monotonic()
        finished = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False)
        outcomes[name] = (finished.returncode, time.monotonic() - started)
    print(
        "\n[bench] "
        + "; ".join(f"{n}: {'ok' if rc == 0 else f'exit {rc}'} ({s:.0f}s)" for n, (rc, s) in outcomes.items())
    )
    return 0 if all(rc == 0 for rc, _ in outcomes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
