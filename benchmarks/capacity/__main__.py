"""``python -m benchmarks.capacity [--quick]`` — see the package docstring; ``make bench BENCH=capacity``."""

from __future__ import annotations

import argparse
import sys

from benchmarks.capacity.run import CapacityError, run_benchmark
from benchmarks.capacity.settings import CapacitySettings
from benchmarks.common.fleet import say
from benchmarks.common.machine import describe_machine
from benchmarks.gateway.wrk import WrkError, find_wrk
from shared.runner.lifecycle import FleetError
from shared.runner.servers import ServerError
from shared.runner.supervisor import SupervisorError

INSTALL_HINT = "apt-get install -y wrk  (Debian; as root)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description="fleet capacity under a mix")
    parser.add_argument("--quick", action="store_true", help="a small world, short steps: a smoke run (BENCH_QUICK=1)")
    args = parser.parse_args(argv)
    try:
        settings = CapacitySettings.from_environment(quick=args.quick)
    except ValueError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2
    wrk = find_wrk()
    if wrk is None:
        print(f"[bench] wrk not found; install with: {INSTALL_HINT}", file=sys.stderr)
        return 2
    machine = describe_machine(
        {"wrk": [wrk, "-v"], "rabbitmq": ["rabbitmqctl", "version"], "postgresql": ["psql", "--version"]}
    )
    say(f"{machine['nproc']} CPUs ({machine['cpu_model']}) shared by wrk, the services and the servers")
    try:
        report = run_benchmark(settings, wrk=wrk, machine=machine)
    except (CapacityError, WrkError, FleetError, ServerError, SupervisorError) as error:
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
