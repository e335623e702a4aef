"""``python -m benchmarks.memory [--quick]`` — see the package docstring; ``make bench BENCH=memory``."""

from __future__ import annotations

from benchmarks.common.cli import bench_main
from benchmarks.common.machine import announce_machine
from benchmarks.common.quiet import NotQuiet
from benchmarks.common.seed import SeedError
from benchmarks.memory import report
from benchmarks.memory.run import MemoryResult, run_benchmark
from benchmarks.memory.settings import MemorySettings


def _run(settings: MemorySettings) -> MemoryResult:
    machine = announce_machine()
    return run_benchmark(settings, machine)


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        name="memory",
        description="resident memory per service",
        quick_help="a short load: a smoke run (BENCH_QUICK=1)",
        settings_from_environment=lambda quick: MemorySettings.from_environment(quick=quick),
        run=_run,
        errors=(SeedError, NotQuiet, RuntimeError),
        write_json=report.write_json,
        render=report.render,
    )


if __name__ == "__main__":
    raise SystemExit(main())
