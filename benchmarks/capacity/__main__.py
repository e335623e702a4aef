"""``python -m benchmarks.capacity [--quick]`` — see the package docstring; ``make bench BENCH=capacity``."""

from __future__ import annotations

from benchmarks.capacity.report import CapacityReport
from benchmarks.capacity.run import CapacityError, run_benchmark
from benchmarks.capacity.settings import CapacitySettings
from benchmarks.common.cli import MissingTool, bench_main
from benchmarks.common.machine import announce_machine
from benchmarks.gateway.wrk import WrkError, find_wrk

INSTALL_HINT = "apt-get install -y wrk  (Debian; as root)"


def _run(settings: CapacitySettings) -> CapacityReport:
    wrk = find_wrk()
    if wrk is None:
        raise MissingTool(f"wrk not found; install with: {INSTALL_HINT}")
    machine = announce_machine(
        {"wrk": [wrk, "-v"], "rabbitmq": ["rabbitmqctl", "version"], "postgresql": ["psql", "--version"]},
        shared_by="wrk, the services and the servers",
    )
    return run_benchmark(settings, wrk=wrk, machine=machine)


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        name="capacity",
        description="fleet capacity under a mix",
        quick_help="a small world, short steps: a smoke run (BENCH_QUICK=1)",
        settings_from_environment=lambda quick: CapacitySettings.from_environment(quick=quick),
        run=_run,
        errors=(CapacityError, WrkError),
    )


if __name__ == "__main__":
    raise SystemExit(main())
