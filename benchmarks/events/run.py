"""One event-path run: fleet up, accounts and lessons seeded, the four phases measured, all torn down."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from benchmarks.common import cpu, gc_pauses
from benchmarks.common.fleet import running_bench_fleet, say
from benchmarks.common.lock import fleet_lock_async
from benchmarks.common.pacing import paced
from benchmarks.common.quiet import wait_until_quiet
from benchmarks.common.seed import (
    GRADE,
    Completion,
    Pair,
    complete_lesson,
    completion_session,
    interleaved,
    seed_pairs,
)
from benchmarks.common.stats import Summary, rate
from benchmarks.events.backlog import commit_completions
from benchmarks.events.bare import BareBus, envelopes
from benchmarks.events.probe import (
    XpWatcher,
    completed_lessons,
    install_xp_trigger,
    outbox_times,
    received_at,
    stage_latencies_ms,
)
from benchmarks.events.report import EventReport, LatencyPhase, ThroughputPhase
from benchmarks.events.settings import EventSettings
from services.student_service.domain.xp import lesson_xp
from shared.fleet import by_name
from shared.runner.lifecycle import PreparedFleet

SERVICES = ("user-service", "lesson-service", "payment-service", "student-service")
CONSUMERS = ("user-service", "lesson-service", "payment-service", "student-service")
LESSON_XP = lesson_xp("regular", GRADE)
ARRIVAL_TIMEOUT_SECONDS = 120  # after the last event is sent, for the rest to arrive


def run_benchmark(settings: EventSettings, machine: dict[str, Any]) -> EventReport:
    started_at, started = datetime.now(UTC), time.monotonic()
    report = EventReport(started_at, settings, machine)
    overrides = {"LESSON_SERVICE_MAX_SERIES_LESSONS": str(settings.series_limit)}
    with running_bench_fleet(SERVICES, overrides) as prepared:
        asyncio.run(Run(prepared, settings, report).measure())
    report.wall_seconds = time.monotonic() - started
    return report


class Run:
    def __init__(self, prepared: PreparedFleet, settings: EventSettings, report: EventReport) -> None:
        layout = prepared.layout
        self.settings = settings
        self.report = report
        self.rabbit_url = prepared.rabbit_url
        self.urls = {name: layout.base_url(by_name(name)) for name in SERVICES}
        self.databases = {name: prepared.environments[name]["DATABASE_URL"] for name in SERVICES}
        self.components = cpu.fleet_components(layout, harness=lambda: cpu.with_children(os.getpid()))

    async def measure(self) -> None:
        s = self.settings
        await install_xp_trigger(self.databases["student-service"])
        pairs = await self._seed()
        work = list(interleaved(pairs))
        low, work = work[: s.paced_events(s.low_rate)], work[s.paced_events(s.low_rate) :]
        paced_work, work = work[: s.paced_events(s.rate)], work[s.paced_events(s.rate) :]
        backlog_work = work[: s.backlog]
        watcher = XpWatcher(self.databases["student-service"]).start()
        bare = BareBus(self.rabbit_url)
        await bare.start()
        try:
            async with fleet_lock_async():
                self.report.bare_latency = await self._bare_latency(bare, pairs[0])
                self.report.bare_throughput = await self._bare_throughput(bare, pairs[0])
                self.report.low_latency = await self._full_latency(watcher, low, s.low_rate)
                await self._quiet()
                self.report.full_latency = await self._full_latency(watcher, paced_work, s.rate)
                await self._quiet()
                self.report.full_throughput = await self._full_throughput(
                    watcher, [lesson for _, lesson in backlog_work]
                )
                await self._quiet()
        finally:
            await bare.close()
            watcher.stop()
        await self._check_xp_through_the_api(pairs)

    async def _seed(self) -> list[Pair]:
        s = self.settings
        say(f"seeding {s.pairs} tutor-student pairs with {s.lessons_per_pair} past lessons each")
        started = time.monotonic()
        pairs = await seed_pairs(
            self.urls["user-service"],
            self.urls["lesson-service"],
            tutors=s.tutors,
            students_per_tutor=s.students_per_tutor,
            lessons_per_pair=s.lessons_per_pair,
            series_limit=s.series_limit,
        )
        seconds = time.monotonic() - started
        quiet = await self._quiet()
        self.report.seed = {
            "pairs": len(pairs),
            "lessons": sum(len(pair.lesson_ids) for pair in pairs),
            "seconds": round(seconds, 1),
            "quiet_seconds": round(quiet, 1),
        }
        say(f"seeded in {seconds:.0f}s; its events consumed {quiet:.0f}s later")
        return pairs

    async def _quiet(self) -> float:
        return await wait_until_quiet({name: self.databases[name] for name in CONSUMERS}, self.rabbit_url)

    # --- the bare bus ---

    async def _bare_latency(self, bare: BareBus, pair: Pair) -> LatencyPhase:
        s = self.settings
        say(f"bare bus: {s.paced_events(s.rate)} envelopes at {s.rate}/s")
        batch = envelopes(s.paced_events(s.rate), tutor_id=pair.tutor.id, student_id=pair.student.id)
        with cpu.measuring(self.components) as usage:
            sent = await paced(batch, s.rate, bare.publish)
            arrived = await bare.received([str(e.event_id) for e in batch], ARRIVAL_TIMEOUT_SECONDS)
        measured = range(s.rate * s.warmup_seconds, len(batch))
        ids = [str(batch[i].event_id) for i in measured]
        latencies = [(arrived[id_] - sent[i]) * 1000 for i, id_ in zip(measured, ids, strict=True) if id_ in arrived]
        return LatencyPhase(
            label=f"bare bus at {s.rate}/s: publish -> consumed",
            events=len(ids),
            achieved_rate=_sending_rate([sent[i] for i in measured]),
            latency_ms=Summary.of(latencies) if latencies else None,
            missing=len(ids) - len(latencies),
            cpu=usage,
        )

    async def _bare_throughput(self, bare: BareBus, pair: Pair) -> ThroughputPhase:
        count = self.settings.backlog
        say(f"bare bus: {count} envelopes published one after another, each confirmed before the next")
        batch = envelopes(count, tutor_id=pair.tutor.id, student_id=pair.student.id)
        with cpu.measuring(self.components) as usage:
            start = time.time()
            for envelope in batch:
                await bare.publish(envelope)
            arrived = await bare.received([str(e.event_id) for e in batch], ARRIVAL_TIMEOUT_SECONDS)
        return _throughput(
            f"bare bus, {count:,} in a row: publish -> consumed", count, start, list(arrived.values()), usage
        )

    # --- the full path ---

    async def _full_latency(self, watcher: XpWatcher, work: Sequence[tuple[Pair, str]], rate: int) -> LatencyPhase:
        s = self.settings
        say(f"full path: {len(work)} lessons completed at {rate}/s through lesson-service's API")
        paused_before = await gc_pauses.snapshot(self.urls)
        async with completion_session(self.urls["lesson-service"]) as client:
            with cpu.measuring(self.components) as usage:
                done: list[Completion] = await paced(work, rate, lambda item: complete_lesson(client, *item))
                missing_ids = await asyncio.to_thread(
                    watcher.wait_for, [c.lesson_id for c in done if c.status == 200], ARRIVAL_TIMEOUT_SECONDS
                )
        paused = gc_pauses.difference(await gc_pauses.snapshot(self.urls), paused_before)
        measured = done[rate * s.warmup_seconds :]
        ok = [c for c in measured if c.status == 200]
        outbox = await outbox_times(self.databases["lesson-service"], [c.lesson_id for c in ok])
        committed = {lesson_id: row.committed for lesson_id, row in outbox.items()}
        received = await received_at(self.databases["student-service"], [row.event_id for row in outbox.values()])
        stages = stage_latencies_ms([c.lesson_id for c in ok], outbox, received, watcher.visible_at)
        latencies = [
            (watcher.visible_at[c.lesson_id] - committed[c.lesson_id]) * 1000
            for c in ok
            if c.lesson_id in watcher.visible_at and c.lesson_id in committed
        ]
        failed = len(measured) - len(ok)
        if failed:
            statuses = sorted({c.status for c in measured if c.status != 200})
            self.report.problems.append(
                f"at {rate}/s: {failed} completions failed (status {statuses}; 0: no answer within the client's"
                " timeout); their events are not counted"
            )
        if missing_ids:
            self.report.problems.append(f"at {rate}/s: {len(missing_ids)} completed lessons never showed their XP")
        origin = done[0].sent_at if done else 0.0

        def since(moment: float | None) -> float | None:
            return None if moment is None else moment - origin

        timeline = [
            (
                c.sent_at - origin,
                c.returned_at - origin,
                since(committed.get(c.lesson_id)),
                since(watcher.visible_at.get(c.lesson_id)),
            )
            for c in ok
        ]
        return LatencyPhase(
            label=f"full path at {rate}/s: committed -> XP visible",
            timeline=timeline,
            events=len(ok),
            achieved_rate=_sending_rate([c.sent_at for c in measured]),
            latency_ms=Summary.of(latencies) if latencies else None,
            missing=len(ok) - len(latencies),
            request_ms=Summary.of([(c.returned_at - c.sent_at) * 1000 for c in ok]) if ok else None,
            failed_requests=failed,
            cpu=usage,
            gc_pauses=paused,
            stages_ms={stage: Summary.of(values) for stage, values in stages.items() if values},
        )

    async def _full_throughput(self, watcher: XpWatcher, lesson_ids: Sequence[str]) -> ThroughputPhase:
        say(f"full path: a backlog of {len(lesson_ids)} completions committed in one transaction")
        with cpu.measuring(self.components) as producing:
            commit = await commit_completions(self.databases["lesson-service"], lesson_ids)
        say(f"committed in {producing.wall_seconds:.1f}s (not measured); draining")
        timeout = ARRIVAL_TIMEOUT_SECONDS + len(lesson_ids) / 50
        with cpu.measuring(self.components) as usage:
            missing = await asyncio.to_thread(watcher.wait_for, lesson_ids, timeout)
        visible = [watcher.visible_at[id_] for id_ in lesson_ids if id_ in watcher.visible_at]
        phase = _throughput(
            f"full path, backlog of {len(lesson_ids):,}: committed -> XP visible",
            len(lesson_ids),
            commit,
            visible,
            usage,
        )
        if missing:
            self.report.problems.append(f"backlog: {len(missing)} lessons never showed their XP within {timeout:.0f}s")
        return phase

    async def _check_xp_through_the_api(self, pairs: list[Pair]) -> None:
        """Each student's XP as student-service's API shows it is 200 for each lesson lesson-service has
        completed for them: no event lost, none applied twice (a completion whose answer the harness did
        not wait for may or may not have happened; lesson-service's own record says which)."""
        completed = await completed_lessons(self.databases["lesson-service"])
        async with httpx.AsyncClient(base_url=self.urls["student-service"], timeout=30) as client:
            for pair in pairs:
                response = await client.get(f"/api/v1/students/{pair.student.id}/profile", headers=pair.tutor.headers)
                shown = response.json().get("xp") if response.status_code == 200 else None
                expected = LESSON_XP * completed.get(pair.student.id, 0)
                if shown != expected:
                    self.report.problems.append(
                        f"student {pair.student.id}: the API shows {shown!r} XP ({response.status_code}),"
                        f" expected {expected} for {completed.get(pair.student.id, 0)} completed lessons"
                    )
        self.report.seed["xp_checked_students"] = len(pairs)
        say(f"XP through student-service's API checked for {len(pairs)} students")


def _sending_rate(sent: Sequence[float]) -> float:
    return rate(len(sent) - 1, max(sent) - min(sent)) if len(sent) > 1 else 0.0


def _throughput(label: str, count: int, start: float, visible: Sequence[float], usage: cpu.CpuUsage) -> ThroughputPhase:
    return ThroughputPhase(
        label=label,
        events=count,
        seconds=(max(visible) - start) if visible else 0.0,
        first_seconds=(min(visible) - start) if visible else None,
        missing=count - len(visible),
        cpu=usage,
    )
