"""What one benchmark run does: load shape, durations and the paced rate, from ``BENCH_*`` variables.

Every target gets the same wrk threads, connections and duration, so the rows of
the table compare like with like. Each phase runs every target ``rounds`` times,
interleaved (the order rotates each round), so a slow spell of the shared machine
falls on all targets alike. ``BENCH_QUICK=1`` shortens everything for a smoke run
of the harness; its figures are too short to quote.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from benchmarks.common.environment import quick_requested, whole_number


@dataclass(frozen=True)
class BenchSettings:
    threads: int = 2  # wrk -t
    connections: int = 64  # wrk -c for the throughput runs
    rounds: int = 3  # measured runs per target in each phase, interleaved across targets
    duration_seconds: int = 5  # wrk -d of each throughput round
    warmup_seconds: int = 3  # one discarded run per target before each phase
    paced_rate: int = 300  # requests per second across all connections in the paced runs
    paced_connections: int = 16  # enough that a connection is rarely busy when its turn comes
    paced_duration_seconds: int = 6  # wrk -d of each paced round: 1,800 requests at 300 req/s
    nginx_workers: int = 1  # the gateway is one process too
    nginx_keepalive: int = 64  # idle upstream connections nginx keeps per worker
    gateway_settings: dict[str, str] = field(default_factory=dict)  # more API_GATEWAY_<NAME> for the run
    quick: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *, quick: bool = False) -> BenchSettings:
        quick = quick_requested(environ, quick)
        defaults = cls.quick_defaults() if quick else cls()

        return cls(
            threads=whole_number(environ, "BENCH_THREADS", defaults.threads),
            connections=whole_number(environ, "BENCH_CONNECTIONS", defaults.connections),
            rounds=whole_number(environ, "BENCH_ROUNDS", defaults.rounds),
            duration_seconds=whole_number(environ, "BENCH_DURATION", defaults.duration_seconds),
            warmup_seconds=whole_number(environ, "BENCH_WARMUP", defaults.warmup_seconds),
            paced_rate=whole_number(environ, "BENCH_RATE", defaults.paced_rate),
            paced_connections=whole_number(environ, "BENCH_PACED_CONNECTIONS", defaults.paced_connections),
            paced_duration_seconds=whole_number(environ, "BENCH_PACED_DURATION", defaults.paced_duration_seconds),
            nginx_workers=whole_number(environ, "BENCH_NGINX_WORKERS", defaults.nginx_workers),
            nginx_keepalive=whole_number(environ, "BENCH_NGINX_KEEPALIVE", defaults.nginx_keepalive),
            gateway_settings=parse_settings_list(environ.get("BENCH_GATEWAY_SETTINGS", "")),
            quick=quick,
        )

    @classmethod
    def quick_defaults(cls) -> BenchSettings:
        return cls(rounds=1, duration_seconds=3, warmup_seconds=1, paced_duration_seconds=3, quick=True)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_settings_list(text: str) -> dict[str, str]:
    """``BENCH_GATEWAY_SETTINGS``: ``"NAME=value,OTHER=value"`` → ``{"NAME": "value", "OTHER": "value"}``."""
    settings: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"BENCH_GATEWAY_SETTINGS must look like 'NAME=value,NAME=value', not {entry!r}")
        settings[name.strip().upper()] = value.strip()
    return settings
