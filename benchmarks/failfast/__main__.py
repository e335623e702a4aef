"""``python -m benchmarks.failfast [--quick]`` — see the package docstring; ``make bench BENCH=failfast``."""

from __future__ import annotations

import argparse
import sys

from benchmarks.common.fleet import say
from benchmarks.common.machine import describe_machine
from benchmarks.failfast import report
from benchmarks.failfast.run import run_benchmark
from benchmarks.failfast.settings import FailFastSettings
from shared.runner.lifecycle import FleetError
from shared.runner.servers import ServerError
from shared.runner.supervisor import SupervisorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failfast", description="breaker open vs timing out")
    parser.add_argument("--quick", action="store_true", help="short phases and timeout: a smoke run (BENCH_QUICK=1)")
    args = parser.parse_args(argv)
    try:
        settings = FailFastSettings.from_environment(quick=args.quick)
    except ValueError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2
    machine = describe_machine()
    say(f"{machine['nproc']} CPUs ({machine['cpu_model']})")
    try:
        result = run_benchmark(settings, machine)
    except (FleetError, ServerError, SupervisorError, RuntimeError) as error:
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
