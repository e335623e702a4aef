"""What one memory run does, from ``BENCH_MEMORY_*`` variables (``BENCH_QUICK=1``: a short smoke run)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from benchmarks.common.environment import quick_requested, whole_number


@dataclass(frozen=True)
class MemorySettings:
    settle_seconds: int = 15  # after the fleet is ready, before the idle samples
    sample_seconds: int = 5  # idle and after-load samples are taken for this long (their median is shown)
    load_seconds: int = 30  # the paced mixed load
    completion_rate: int = 50  # lessons completed per second during the load
    read_rate: int = 100  # reads per second during the load, spread over every service
    tutors: int = 2
    students_per_tutor: int = 3
    interval_seconds: float = 0.5  # between two samples
    quick: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *, quick: bool = False) -> MemorySettings:
        quick = quick_requested(environ, quick)
        defaults = cls.quick_defaults() if quick else cls()

        return cls(
            settle_seconds=whole_number(environ, "BENCH_MEMORY_SETTLE", defaults.settle_seconds),
            sample_seconds=whole_number(environ, "BENCH_MEMORY_SAMPLE", defaults.sample_seconds),
            load_seconds=whole_number(environ, "BENCH_MEMORY_LOAD", defaults.load_seconds),
            completion_rate=whole_number(environ, "BENCH_MEMORY_COMPLETION_RATE", defaults.completion_rate),
            read_rate=whole_number(environ, "BENCH_MEMORY_READ_RATE", defaults.read_rate),
            tutors=defaults.tutors,
            students_per_tutor=defaults.students_per_tutor,
            interval_seconds=defaults.interval_seconds,
            quick=quick,
        )

    @classmethod
    def quick_defaults(cls) -> MemorySettings:
        return cls(settle_seconds=3, sample_seconds=2, load_seconds=5, quick=True)

    @property
    def completions(self) -> int:
        return self.completion_rate * self.load_seconds

    @property
    def lessons_per_pair(self) -> int:
        return math.ceil(self.completions / (self.tutors * self.students_per_tutor))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
