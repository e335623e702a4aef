"""``python -m benchmarks.failfast [--quick]`` — see the package docstring; ``make bench BENCH=failfast``."""

from __future__ import annotations

from benchmarks.common.cli import bench_main
from benchmarks.common.machine import announce_machine
from benchmarks.failfast import report
from benchmarks.failfast.run import FailFastResult, run_benchmark
from benchmarks.failfast.settings import FailFastSettings


def _run(settings: FailFastSettings) -> FailFastResult:
    machine = announce_machine()
    return run_benchmark(settings, machine)


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        name="failfast",
        description="breaker open vs timing out",
        quick_help="short phases and timeout: a smoke run (BENCH_QUICK=1)",
        settings_from_environment=lambda quick: FailFastSettings.from_environment(quick=quick),
        run=_run,
        errors=(RuntimeError,),
        write_json=report.write_json,
        render=report.render,
    )


if __name__ == "__main__":
    raise SystemExit(main())
