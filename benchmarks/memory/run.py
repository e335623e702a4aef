"""One memory run: the whole fleet up, idle samples, a mixed load through the gateway, samples after."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from benchmarks.common.cpu import service_processes
from benchmarks.common.fleet import ALL_SERVICES, running_bench_fleet, say
from benchmarks.common.lock import fleet_lock_async
from benchmarks.common.pacing import paced
from benchmarks.common.quiet import wait_until_quiet
from benchmarks.common.seed import Pair, complete_lesson, completion_session, interleaved, seed_pairs
from benchmarks.gateway.gateway import gateway_overrides
from benchmarks.memory.sampling import Sampler, Samples
from benchmarks.memory.settings import MemorySettings
from shared.fleet import FLEET, by_name
from shared.runner.lifecycle import PreparedFleet
from shared.runner.supervisor import Supervisor

SERIES_LIMIT = 100  # lesson-service's default MAX_SERIES_LESSONS
# One read per service (all through the gateway, as the tutor of a pair); {s} the student, {t} the tutor.
READS = (
    "/api/v1/users/me",
    "/api/v1/lessons?student_id={s}&limit=50",
    "/api/v1/homework?student_id={s}",
    "/api/v1/payments/balances/{s}",
    "/api/v1/payments/statements/{s}",
    "/api/v1/materials",
    "/api/v1/analytics/tutors/{t}/summary",
    "/api/v1/analytics/students/{s}/progress",
    "/api/v1/notifications/preferences",
    "/api/v1/students/{s}/profile",
)


@dataclass
class MemoryResult:
    started_at: datetime
    settings: MemorySettings
    machine: dict[str, Any]
    idle: Samples = field(default_factory=Samples)
    load: Samples = field(default_factory=Samples)
    after: Samples = field(default_factory=Samples)
    answers: dict[str, Counter[int]] = field(default_factory=dict)  # request kind → status → count
    load_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def run_benchmark(settings: MemorySettings, machine: dict[str, Any]) -> MemoryResult:
    started_at, started = datetime.now(UTC), time.monotonic()
    result = MemoryResult(started_at, settings, machine)
    overrides = gateway_overrides(by_name("api-gateway"), {})
    with running_bench_fleet(ALL_SERVICES, overrides) as prepared:
        asyncio.run(_measure(prepared, settings, result))
    result.wall_seconds = time.monotonic() - started
    return result


async def _measure(prepared: PreparedFleet, settings: MemorySettings, result: MemoryResult) -> None:
    s = settings
    layout = prepared.layout
    supervisor = Supervisor(layout)

    def lookup() -> dict[str, list[int]]:
        return service_processes(supervisor)

    gateway_url = layout.base_url(by_name("api-gateway"))
    databases = {
        spec.name: prepared.environments[spec.name]["DATABASE_URL"] for spec in layout.specs if spec.has_database
    }
    async with fleet_lock_async():
        say(f"idle: settling {s.settle_seconds}s, then sampling for {s.sample_seconds}s")
        await asyncio.sleep(s.settle_seconds)
        result.idle = await _sample_for(lookup, s)
        sampler = Sampler(lookup, s.interval_seconds).start()
        load_started = time.monotonic()
        try:
            pairs = await seed_pairs(
                gateway_url,
                gateway_url,
                tutors=s.tutors,
                students_per_tutor=s.students_per_tutor,
                lessons_per_pair=s.lessons_per_pair,
                series_limit=SERIES_LIMIT,
            )
            say(
                f"load: {s.completion_rate} completions/s and {s.read_rate} reads/s through the gateway"
                f" for {s.load_seconds}s"
            )
            await _mixed_load(gateway_url, pairs, s, result)
        finally:
            result.load = sampler.stop()
            result.load_seconds = time.monotonic() - load_started
        waited = await wait_until_quiet(databases, prepared.rabbit_url)
        say(f"every event consumed {waited:.0f}s after the load; sampling for {s.sample_seconds}s")
        result.after = await _sample_for(lookup, s)
    missing = {spec.name for spec in FLEET} - set(result.idle.by_service)
    if missing:
        result.problems.append(f"not running, so not measured: {', '.join(sorted(missing))}")


async def _sample_for(lookup: Any, s: MemorySettings) -> Samples:
    sampler = Sampler(lookup, s.interval_seconds).start()
    await asyncio.sleep(s.sample_seconds)
    return sampler.stop()


async def _mixed_load(gateway_url: str, pairs: list[Pair], s: MemorySettings, result: MemoryResult) -> None:
    completions = list(interleaved(pairs))[: s.completions]
    reads = list(itertools.islice(itertools.cycle(itertools.product(pairs, READS)), s.read_rate * s.load_seconds))
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with (
        httpx.AsyncClient(base_url=gateway_url, timeout=30, limits=limits) as client,
        completion_session(gateway_url) as completing,
    ):

        async def read(item: tuple[Pair, str]) -> tuple[str, int]:
            pair, template = item
            path = template.format(s=pair.student.id, t=pair.tutor.id)
            try:
                status = (await client.get(path, headers=pair.tutor.headers)).status_code
            except httpx.HTTPError:
                status = 0
            return template.split("?")[0], status

        async def complete(item: tuple[Pair, str]) -> tuple[str, int]:
            return "POST /api/v1/lessons/{id}/complete", (await complete_lesson(completing, *item)).status

        answered = await asyncio.gather(
            paced(completions, s.completion_rate, complete), paced(reads, s.read_rate, read)
        )
    for kind, status in itertools.chain(*answered):
        result.answers.setdefault(kind, Counter())[status] += 1
    for kind, statuses in result.answers.items():
        failed = sum(count for status, count in statuses.items() if not 200 <= status < 300)
        if failed:
            result.problems.append(
                f"{kind}: {failed} of {sum(statuses.values())} answers were not 2xx: {dict(statuses)}"
            )
