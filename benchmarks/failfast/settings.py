"""What one fail-fast run does, from ``BENCH_FAILFAST_*`` variables (``BENCH_QUICK=1``: a short smoke run)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from benchmarks.common.environment import positive_number, quick_requested, whole_number


@dataclass(frozen=True)
class FailFastSettings:
    rate: int = 100  # requests/s in the healthy and breaker-open phases
    seconds: int = 5  # length of those two phases (kept below the breaker's reset time)
    hanging_rate: int = 20  # requests/s sent into the hanging upstream...
    hanging_seconds: int = 2  # ...for this long; each then waits for the whole timeout
    timeout_seconds: float | None = None  # the gateway's UPSTREAM_TIMEOUT_SECONDS; None: its default
    quick: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *, quick: bool = False) -> FailFastSettings:
        quick = quick_requested(environ, quick)
        defaults = cls.quick_defaults() if quick else cls()

        return cls(
            rate=whole_number(environ, "BENCH_FAILFAST_RATE", defaults.rate),
            seconds=whole_number(environ, "BENCH_FAILFAST_SECONDS", defaults.seconds),
            hanging_rate=whole_number(environ, "BENCH_FAILFAST_HANGING_RATE", defaults.hanging_rate),
            hanging_seconds=whole_number(environ, "BENCH_FAILFAST_HANGING_SECONDS", defaults.hanging_seconds),
            timeout_seconds=positive_number(environ, "BENCH_FAILFAST_TIMEOUT", defaults.timeout_seconds),
            quick=quick,
        )

    @classmethod
    def quick_defaults(cls) -> FailFastSettings:
        return cls(seconds=2, hanging_seconds=1, timeout_seconds=3.0, quick=True)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
