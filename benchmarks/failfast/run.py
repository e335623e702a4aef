"""One fail-fast run: a proxy in front of lesson-service, the fleet up, three paced phases, all torn down."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from benchmarks.common.fleet import bench_layout, running_bench_fleet, say
from benchmarks.common.lock import fleet_lock_async
from benchmarks.common.pacing import paced
from benchmarks.common.stats import Summary
from benchmarks.failfast.settings import FailFastSettings
from benchmarks.gateway.gateway import gateway_overrides
from shared.fleet import by_name
from shared.runner.lifecycle import PreparedFleet
from shared.testing.accounts import register
from shared.testing.tcp_proxy import TcpProxy

SERVICES = ("api-gateway", "user-service", "lesson-service")
UPSTREAM = "lesson-service"
ENDPOINT = "/api/v1/lessons"
HEALTHY, HANGING, OPEN = "healthy", "hanging", "open"
EXPECTED_STATUS = {HEALTHY: 200, HANGING: 504, OPEN: 503}


@dataclass
class Phase:
    key: str
    label: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer at all

    @property
    def summary(self) -> Summary | None:
        return Summary.of(self.latencies_ms) if self.latencies_ms else None

    @property
    def unexpected(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != EXPECTED_STATUS[self.key])

    def as_dict(self) -> dict[str, Any]:
        summary = self.summary
        return {
            "label": self.label,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "latency_ms": summary.as_dict() if summary else None,
        }


@dataclass
class FailFastResult:
    started_at: datetime
    settings: FailFastSettings
    machine: dict[str, Any]
    gateway_settings: dict[str, str]
    phases: dict[str, Phase] = field(default_factory=dict)
    breaker_after_hang: str | None = None
    recovered_after_seconds: float | None = None
    problems: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def run_benchmark(settings: FailFastSettings, machine: dict[str, Any]) -> FailFastResult:
    started_at, started = datetime.now(UTC), time.monotonic()
    upstream = by_name(UPSTREAM)
    with TcpProxy("127.0.0.1", bench_layout(SERVICES).port(upstream)) as proxy:
        extra = {f"{UPSTREAM.replace('-', '_').upper()}_URLS": f"http://127.0.0.1:{proxy.port}"}
        if settings.timeout_seconds is not None:
            extra["UPSTREAM_TIMEOUT_SECONDS"] = f"{settings.timeout_seconds:g}"
        overrides = gateway_overrides(by_name("api-gateway"), extra)
        result = FailFastResult(started_at, settings, machine, overrides)
        say("gateway settings for the run: " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())))
        with running_bench_fleet(SERVICES, overrides) as prepared:
            asyncio.run(_measure(prepared, proxy, settings, result))
    result.wall_seconds = time.monotonic() - started
    return result


async def _measure(
    prepared: PreparedFleet, proxy: TcpProxy, settings: FailFastSettings, result: FailFastResult
) -> None:
    layout = prepared.layout
    gateway_url = layout.base_url(by_name("api-gateway"))
    timeout = (settings.timeout_seconds or 30.0) + 30
    async with (
        httpx.AsyncClient(base_url=layout.base_url(by_name("user-service")), timeout=30) as users,
        httpx.AsyncClient(base_url=gateway_url, timeout=timeout, limits=httpx.Limits(max_connections=None)) as gateway,
    ):
        tutor = await register(users, "bench failfast tutor")
        headers = tutor.headers
        await _until_answered(gateway, headers)

        async def get(_: int) -> tuple[float, int]:
            started = time.perf_counter()
            try:
                status = (await gateway.get(ENDPOINT, headers=headers)).status_code
            except httpx.HTTPError:
                status = 0
            return (time.perf_counter() - started) * 1000, status

        s = settings
        async with fleet_lock_async():
            say(f"{HEALTHY}: {s.rate} req/s for {s.seconds}s through the proxy")
            result.phases[HEALTHY] = _phase(
                HEALTHY, "upstream healthy", await paced(range(s.rate * s.seconds), s.rate, get)
            )
            proxy.hang()
            say(
                f"{HANGING}: {s.hanging_rate} req/s for {s.hanging_seconds}s into the hanging upstream; each waits for the timeout"
            )
            hanging = await paced(range(s.hanging_rate * s.hanging_seconds), s.hanging_rate, get)
            result.phases[HANGING] = _phase(HANGING, "upstream hanging, breaker closed", hanging)
            result.breaker_after_hang = await _breaker_state(gateway)
            say(f"breaker {result.breaker_after_hang}; {OPEN}: {s.rate} req/s for {s.seconds}s")
            result.phases[OPEN] = _phase(
                OPEN, "upstream hanging, breaker open", await paced(range(s.rate * s.seconds), s.rate, get)
            )
            proxy.restore()
            result.recovered_after_seconds = await _recovery(gateway, headers, limit=timeout + 60)
    for phase in result.phases.values():
        if phase.unexpected:
            result.problems.append(
                f"{phase.label}: {phase.unexpected} answers were not {EXPECTED_STATUS[phase.key]}: {dict(phase.statuses)}"
            )
    if result.breaker_after_hang != "open":
        result.problems.append(f"the breaker was {result.breaker_after_hang!r}, not open, after the hanging phase")


def _phase(key: str, label: str, answers: Sequence[tuple[float, int]]) -> Phase:
    phase = Phase(key, label)
    for latency, status in answers:
        phase.latencies_ms.append(latency)
        phase.statuses[status] += 1
    return phase


async def _until_answered(gateway: httpx.AsyncClient, headers: dict[str, str], limit: float = 60) -> None:
    """The gateway has found lesson-service behind the proxy healthy and answers through it."""
    deadline = time.monotonic() + limit
    while (await gateway.get(ENDPOINT, headers=headers)).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not answer {ENDPOINT} with 200 within {limit:.0f}s")
        await asyncio.sleep(0.2)


async def _breaker_state(gateway: httpx.AsyncClient) -> str | None:
    instances = (await gateway.get("/gateway/services")).json()["services"][UPSTREAM]["instances"]
    return str(instances[0]["breaker"]["state"]) if instances else None


async def _recovery(gateway: httpx.AsyncClient, headers: dict[str, str], limit: float) -> float | None:
    """Seconds from the proxy's restore until a request succeeds again (the breaker's reset and a probe)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if (await gateway.get(ENDPOINT, headers=headers)).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    return None
