"""The command line every ``python -m benchmarks.<name>`` shares: ``--quick``, settings from the
environment, the run, then the report printed and saved. Exit 2: bad settings or a missing tool;
exit 1: the run failed (the message says what); 0: the report was written."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from shared.runner.lifecycle import FleetError
from shared.runner.servers import ServerError
from shared.runner.supervisor import SupervisorError

S = TypeVar("S")
R = TypeVar("R")

# what any benchmark's fleet can fail with; a benchmark adds its own error types
FLEET_ERRORS: tuple[type[BaseException], ...] = (FleetError, ServerError, SupervisorError)


class MissingTool(Exception):
    """A program the benchmark drives (wrk, nginx) is not installed; the message says how to get it."""


def bench_main(
    argv: list[str] | None,
    *,
    name: str,
    description: str,
    quick_help: str,
    settings_from_environment: Callable[[bool], S],
    run: Callable[[S], R],
    errors: tuple[type[BaseException], ...] = (),
    write_json: Callable[[R], Path] = lambda report: report.write_json(),  # type: ignore[attr-defined]
    render: Callable[[R], str] = lambda report: report.render(),  # type: ignore[attr-defined]
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_environment(args.quick)
    except ValueError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2
    try:
        report: Any = run(settings)
    except MissingTool as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 2
    except FLEET_ERRORS + errors as error:
        print(f"[bench] error: {error}", file=sys.stderr)
        return 1
    path = write_json(report)
    print()
    print(render(report))
    print()
    print(f"results: {path}  (whole run {report.wall_seconds:.0f}s)")
    return 0
