"""``python -m benchmarks.gateway [--quick]`` — what ``make bench`` runs. See the package docstring."""

from __future__ import annotations

import argparse
import sys

from benchmarks.common.fleet import say
from benchmarks.common.machine import describe_machine
from benchmarks.gateway.nginx import NginxError, find_nginx
from benchmarks.gateway.run import BenchError, run_benchmark
from benchmarks.gateway.settings import BenchSettings
from benchmarks.gateway.wrk import find_wrk
from shared.runner.lifecycle import FleetError
from shared.runner.servers import ServerError
from shared.runner.supervisor import SupervisorError

INSTALL_HINT = "apt-get install -y wrk nginx  (Debian; as root)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases: a smoke run of the harness (BENCH_QUICK=1)")
    args = parser.parse_args(argv)
    try:
        settings = BenchSettings.from_environment(quick=args.quick)
    except ValueError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2

    wrk, nginx = find_wrk(), find_nginx()
    if wrk is None or nginx is None:
        missing = " and ".join(name for name, path in (("wrk", wrk), ("nginx", nginx)) if path is None)
        print(f"[bench] {missing} not found; install with: {INSTALL_HINT}", file=sys.stderr)
        return 2

    machine = describe_machine({"wrk": [wrk, "-v"], "nginx": [nginx, "-v"]})
    say(f"{machine['nproc']} CPUs ({machine['cpu_model']}) shared by wrk, nginx, the services and the servers")
    try:
        report = run_benchmark(settings, wrk=wrk, nginx_executable=nginx, machine=machine)
    except (BenchError, FleetError, ServerError, SupervisorError, NginxError) as error:
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
