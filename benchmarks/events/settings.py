"""What one event-path run does, from ``BENCH_EVENTS_*`` variables (``BENCH_QUICK=1``: a short smoke run)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from benchmarks.common.environment import quick_requested, whole_number


@dataclass(frozen=True)
class EventSettings:
    rate: int = 100  # completions per second in the paced phase the target is about
    low_rate: int = 20  # a second paced phase, below what the path sustains: its latency unloaded
    duration_seconds: int = 30  # measured part of each paced phase
    warmup_seconds: int = 5  # paced, before the measured part, not counted
    backlog: int = 6000  # completions committed at once for the sustained-rate phase
    # 100 pairs of 95 lessons each: a student's history stays what two years of weekly lessons leave
    # (the XP and streak rules look at the whole history, so a few students with thousands of lessons
    # would measure something else)
    tutors: int = 10
    students_per_tutor: int = 10  # each pair gets its lessons at its own hour, so a tutor's never overlap
    series_limit: int = 500  # lesson-service's MAX_SERIES_LESSONS for the run (its own maximum)
    quick: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *, quick: bool = False) -> EventSettings:
        quick = quick_requested(environ, quick)
        defaults = cls.quick_defaults() if quick else cls()

        settings = cls(
            rate=whole_number(environ, "BENCH_EVENTS_RATE", defaults.rate),
            low_rate=whole_number(environ, "BENCH_EVENTS_LOW_RATE", defaults.low_rate),
            duration_seconds=whole_number(environ, "BENCH_EVENTS_DURATION", defaults.duration_seconds),
            warmup_seconds=whole_number(environ, "BENCH_EVENTS_WARMUP", defaults.warmup_seconds),
            backlog=whole_number(environ, "BENCH_EVENTS_BACKLOG", defaults.backlog),
            tutors=whole_number(environ, "BENCH_EVENTS_TUTORS", defaults.tutors),
            students_per_tutor=whole_number(environ, "BENCH_EVENTS_STUDENTS", defaults.students_per_tutor),
            series_limit=defaults.series_limit,
            quick=quick,
        )
        if settings.students_per_tutor > 12:
            raise ValueError("BENCH_EVENTS_STUDENTS may be at most 12 (one hour of the day each, from 06:00 UTC)")
        return settings

    @classmethod
    def quick_defaults(cls) -> EventSettings:
        return cls(duration_seconds=5, warmup_seconds=1, backlog=600, tutors=3, students_per_tutor=4, quick=True)

    @property
    def pairs(self) -> int:
        return self.tutors * self.students_per_tutor

    def paced_events(self, rate: int) -> int:
        """Completions a paced phase at ``rate`` sends, warm-up included."""
        return rate * (self.warmup_seconds + self.duration_seconds)

    @property
    def lessons_needed(self) -> int:
        return self.paced_events(self.low_rate) + self.paced_events(self.rate) + self.backlog

    @property
    def lessons_per_pair(self) -> int:
        """Enough past lessons for both paced phases and the backlog, spread over every pair."""
        return math.ceil(self.lessons_needed / self.pairs)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
