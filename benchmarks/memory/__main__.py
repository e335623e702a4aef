"""``python -m benchmarks.memory [--quick]`` — see the package docstring; ``make bench BENCH=memory``."""

from __future__ import annotations

import argparse
import sys

from benchmarks.common.fleet import say
from benchmarks.common.machine import describe_machine
from benchmarks.common.quiet import NotQuiet
from benchmarks.common.seed import SeedError
from benchmarks.memory import report
from benchmarks.memory.run import run_benchmark
from benchmarks.memory.settings import MemorySettings
from shared.runner.lifecycle import FleetError
from shared.runner.servers import ServerError
from shared.runner.supervisor import SupervisorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description="resident memory per service")
    parser.add_argument("--quick", action="store_true", help="a short load: a smoke run (BENCH_QUICK=1)")
    args = parser.parse_args(argv)
    try:
        settings = MemorySettings.from_environment(quick=args.quick)
    except ValueError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2
    machine = describe_machine()
    say(f"{machine['nproc']} CPUs ({machine['cpu_model']})")
    try:
        result = run_benchmark(settings, machine)
    except (FleetError, ServerError, SupervisorError, SeedError, NotQuiet, RuntimeError) as error:
        print(f"[bench] error: {error}", file=sys.stderr)
        return 1
    path = report.write_json(result)
    print()
    print(report.render(result))
    print()
    print(f"results: {path}  (whole run {result.wall_seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
