"""What one capacity run does: the world's size, the rate search and its time budget, from ``BENCH_*`` variables.

``BENCH_QUICK=1`` is a smoke run of the harness (a small world, short steps); its figures are not quoted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from benchmarks.common.environment import quick_requested, whole_number


@dataclass(frozen=True)
class CapacitySettings:
    tutors: int = 200
    students_per_tutor: int = 25
    start_rate: int = 40  # req/s of the warm-up and the first step
    growth_percent: int = 50  # each step while they hold: +50%
    resolution_percent: int = 10  # bisecting stops when the bracket is this narrow
    step_seconds: int = 25  # wrk -d of each step
    warmup_seconds: int = 10  # one discarded run at the start rate
    budget_seconds: int = 300  # warm-up and steps together never measure longer
    drain_timeout_seconds: int = 120  # after a step, how long the events it caused may take to be consumed
    p99_below_ms: int = 300
    retries: int = 2  # a failed step during which other programs took CPU is measured again, this often per run
    threads: int = 2  # wrk -t
    quick: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *, quick: bool = False) -> CapacitySettings:
        quick = quick_requested(environ, quick)
        defaults = cls.quick_defaults() if quick else cls()

        settings = cls(
            tutors=whole_number(environ, "BENCH_CAPACITY_TUTORS", defaults.tutors),
            students_per_tutor=whole_number(environ, "BENCH_CAPACITY_STUDENTS_PER_TUTOR", defaults.students_per_tutor),
            start_rate=whole_number(environ, "BENCH_CAPACITY_START_RATE", defaults.start_rate),
            growth_percent=whole_number(environ, "BENCH_CAPACITY_GROWTH_PERCENT", defaults.growth_percent),
            resolution_percent=whole_number(environ, "BENCH_CAPACITY_RESOLUTION_PERCENT", defaults.resolution_percent),
            step_seconds=whole_number(environ, "BENCH_CAPACITY_STEP_SECONDS", defaults.step_seconds),
            warmup_seconds=whole_number(environ, "BENCH_CAPACITY_WARMUP_SECONDS", defaults.warmup_seconds),
            budget_seconds=whole_number(environ, "BENCH_CAPACITY_BUDGET_SECONDS", defaults.budget_seconds),
            drain_timeout_seconds=whole_number(environ, "BENCH_CAPACITY_DRAIN_TIMEOUT", defaults.drain_timeout_seconds),
            p99_below_ms=defaults.p99_below_ms,
            retries=whole_number(environ, "BENCH_CAPACITY_RETRIES", defaults.retries, minimum=0),
            threads=whole_number(environ, "BENCH_THREADS", defaults.threads),
            quick=quick,
        )
        if settings.warmup_seconds + settings.step_seconds > settings.budget_seconds:
            raise ValueError("BENCH_CAPACITY_BUDGET_SECONDS leaves no room for one step after the warm-up")
        return settings

    @classmethod
    def quick_defaults(cls) -> CapacitySettings:
        return cls(tutors=20, start_rate=20, step_seconds=5, warmup_seconds=3, budget_seconds=20, quick=True)

    @property
    def max_steps(self) -> int:
        """The steps that fit in the budget after the warm-up."""
        return (self.budget_seconds - self.warmup_seconds) // self.step_seconds

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "max_steps": self.max_steps}
