"""``python -m benchmarks.events [--quick]`` — see the package docstring; ``make bench BENCH=events``."""

from __future__ import annotations

from benchmarks.common.cli import bench_main
from benchmarks.common.machine import announce_machine
from benchmarks.common.quiet import NotQuiet
from benchmarks.common.seed import SeedError
from benchmarks.events.report import EventReport
from benchmarks.events.run import run_benchmark
from benchmarks.events.settings import EventSettings


def _run(settings: EventSettings) -> EventReport:
    machine = announce_machine(
        {"rabbitmq": ["rabbitmqctl", "version"], "postgresql": ["psql", "--version"]},
        shared_by="the harness, the services and the servers",
    )
    return run_benchmark(settings, machine)


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        name="events",
        description="lesson.completed -> XP visible",
        quick_help="short phases: a smoke run of the harness (BENCH_QUICK=1)",
        settings_from_environment=lambda quick: EventSettings.from_environment(quick=quick),
        run=_run,
        errors=(SeedError, NotQuiet, RuntimeError),
    )


if __name__ == "__main__":
    raise SystemExit(main())
