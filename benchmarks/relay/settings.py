"""What one relay run does, from ``BENCH_RELAY_*`` variables (``BENCH_QUICK=1``: a short smoke run)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from benchmarks.common.environment import positive_number, quick_requested, whole_number


@dataclass(frozen=True)
class RelaySettings:
    rate: int = 100  # commits per second, one event each
    seconds: int = 10  # measured part of each round
    warmup_seconds: int = 2  # paced, before the measured part, not counted
    rounds: int = 2  # per way, alternating (notify, hand-over, notify, ...): drift on the host hits both
    busy_ms: float = 3.0  # CPU the committing loop spends after each commit, holding the interpreter
    quick: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *, quick: bool = False) -> RelaySettings:
        quick = quick_requested(environ, quick)
        defaults = cls.quick_defaults() if quick else cls()
        return cls(
            rate=whole_number(environ, "BENCH_RELAY_RATE", defaults.rate),
            seconds=whole_number(environ, "BENCH_RELAY_SECONDS", defaults.seconds),
            warmup_seconds=whole_number(environ, "BENCH_RELAY_WARMUP", defaults.warmup_seconds),
            rounds=whole_number(environ, "BENCH_RELAY_ROUNDS", defaults.rounds),
            busy_ms=positive_number(environ, "BENCH_RELAY_BUSY_MS", defaults.busy_ms) or defaults.busy_ms,
            quick=quick,
        )

    @classmethod
    def quick_defaults(cls) -> RelaySettings:
        return cls(seconds=2, warmup_seconds=1, rounds=1, quick=True)

    @property
    def commits_per_round(self) -> int:
        return self.rate * (self.warmup_seconds + self.seconds)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
