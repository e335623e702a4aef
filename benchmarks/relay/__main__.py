"""``python -m benchmarks.relay [--quick]`` — see the package docstring; ``make bench BENCH=relay``."""

from __future__ import annotations

from benchmarks.common.cli import bench_main
from benchmarks.common.machine import announce_machine
from benchmarks.relay.report import render, write_json
from benchmarks.relay.run import RelayResult, run_benchmark
from benchmarks.relay.settings import RelaySettings


def _run(settings: RelaySettings) -> RelayResult:
    machine = announce_machine(
        {"rabbitmq": ["rabbitmqctl", "version"], "postgresql": ["psql", "--version"]},
        shared_by="the committing loop, the relay's thread and the servers",
    )
    return run_benchmark(settings, machine)


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        name="relay",
        description="commit -> publish: the outbox hand-over against NOTIFY",
        quick_help="short rounds: a smoke run of the harness (BENCH_QUICK=1)",
        settings_from_environment=lambda quick: RelaySettings.from_environment(quick=quick),
        run=_run,
        errors=(RuntimeError, AssertionError),  # AssertionError: the relay did not finish in time
        write_json=write_json,
        render=render,
    )


if __name__ == "__main__":
    raise SystemExit(main())
