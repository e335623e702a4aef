"""``python -m benchmarks.events [--quick]`` — see the package docstring; ``make bench BENCH=events``."""

from __future__ import annotations

import argparse
import sys

from benchmarks.common.fleet import say
from benchmarks.common.machine import describe_machine
from benchmarks.common.quiet import NotQuiet
from benchmarks.common.seed import SeedError
from benchmarks.events.run import run_benchmark
from benchmarks.events.settings import EventSettings
from shared.runner.lifecycle import FleetError
from shared.runner.servers import ServerError
from shared.runner.supervisor import SupervisorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.events", description="lesson.completed -> XP visible")
    parser.add_argument("--quick", action="store_true", help="short phases: a smoke run of the harness (BENCH_QUICK=1)")
    args = parser.parse_args(argv)
    try:
        settings = EventSettings.from_environment(quick=args.quick)
    except ValueError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2
    machine = describe_machine({"rabbitmq": ["rabbitmqctl", "version"], "postgresql": ["psql", "--version"]})
    say(f"{machine['nproc']} CPUs ({machine['cpu_model']}) shared by the harness, the services and the servers")
    try:
        report = run_benchmark(settings, machine)
    except (FleetError, ServerError, SupervisorError, SeedError, NotQuiet, RuntimeError) as error:
        print(f"[bench] error: {error}", file=sys.stderr)
        return 1
    path = report.write_json()
    print()
    print(report.render())
    print()
    print(f"results: {path}  (whole run {report.wall_seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
