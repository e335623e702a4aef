"""``python -m benchmarks.gateway [--quick]`` — what ``make bench`` runs. See the package docstring."""

from __future__ import annotations

from benchmarks.common.cli import MissingTool, bench_main
from benchmarks.common.machine import announce_machine
from benchmarks.gateway.nginx import NginxError, find_nginx
from benchmarks.gateway.report import BenchReport
from benchmarks.gateway.run import BenchError, run_benchmark
from benchmarks.gateway.settings import BenchSettings
from benchmarks.gateway.wrk import find_wrk

INSTALL_HINT = "apt-get install -y wrk nginx  (Debian; as root)"


def _run(settings: BenchSettings) -> BenchReport:
    wrk, nginx = find_wrk(), find_nginx()
    if wrk is None or nginx is None:
        missing = " and ".join(name for name, path in (("wrk", wrk), ("nginx", nginx)) if path is None)
        raise MissingTool(f"{missing} not found; install with: {INSTALL_HINT}")
    machine = announce_machine(
        {"wrk": [wrk, "-v"], "nginx": [nginx, "-v"]}, shared_by="wrk, nginx, the services and the servers"
    )
    return run_benchmark(settings, wrk=wrk, nginx_executable=nginx, machine=machine)


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        name="gateway",
        description=(__doc__ or "").splitlines()[0],
        quick_help="short phases: a smoke run of the harness (BENCH_QUICK=1)",
        settings_from_environment=lambda quick: BenchSettings.from_environment(quick=quick),
        run=_run,
        errors=(BenchError, NginxError),
    )


if __name__ == "__main__":
    raise SystemExit(main())
