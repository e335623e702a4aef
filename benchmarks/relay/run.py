"""One relay run: a scratch database and vhost, then rounds of paced commits, each way in turn."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY

from benchmarks.common import cpu
from benchmarks.common.lock import fleet_lock_async
from benchmarks.common.output import say
from benchmarks.common.pacing import paced
from benchmarks.common.stats import Summary
from benchmarks.relay.settings import RelaySettings
from shared.db import Database, after_commit
from shared.events.bus import PublishError, RabbitMQBus
from shared.events.catalogue import UserUpdated
from shared.events.envelope import Envelope
from shared.events.outbox import add_event
from shared.events.relay_thread import ThreadedOutboxRelay
from shared.runner.servers import Endpoints, ensure_servers
from shared.testing import infra
from shared.testing.events import eventually

SERVICE = "relay-bench"
NOTIFY, HANDOVER = "notify", "hand-over"
WAYS = (NOTIFY, HANDOVER)
DRAIN_TIMEOUT_SECONDS = 60


@dataclass
class Round:
    """What one round of one way measured (times in seconds, from ``time.perf_counter``)."""

    way: str
    committed: dict[uuid.UUID, float] = field(default_factory=dict)
    publishing: dict[uuid.UUID, float] = field(default_factory=dict)
    confirmed: dict[uuid.UUID, float] = field(default_factory=dict)
    relay_cpu_seconds: float = 0.0
    postgres_cpu_seconds: float = 0.0
    measured_events: int = 0


@dataclass
class RelayResult:
    started_at: datetime
    settings: RelaySettings
    machine: dict[str, Any]
    rounds: list[Round] = field(default_factory=list)
    wall_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def of_way(self, way: str) -> list[Round]:
        return [r for r in self.rounds if r.way == way]

    def latency_ms(self, way: str, until: str) -> Summary | None:
        """From the commit to ``until`` ("publishing" or "confirmed"), over the way's measured events."""
        samples = [
            (getattr(r, until)[event] - at) * 1000
            for r in self.of_way(way)
            for event, at in r.committed.items()
            if event in getattr(r, until)
        ]
        return Summary.of(samples) if samples else None

    def cpu_us_per_event(self, way: str, component: str) -> float | None:
        rounds = self.of_way(way)
        events = sum(r.measured_events for r in rounds)
        seconds = sum(getattr(r, f"{component}_cpu_seconds") for r in rounds)
        return seconds / events * 1e6 if events else None


class _TimedBus(RabbitMQBus):
    """The real bus, noting when each publish began and when the broker confirmed it."""

    def __init__(self, *args: Any, round_: Round, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.round = round_

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[PublishError | None]:
        began = time.perf_counter()
        for envelope in envelopes:
            self.round.publishing.setdefault(envelope.event_id, began)
        outcomes = await super().publish_many(envelopes)
        confirmed = time.perf_counter()  # the batch's confirms are awaited together
        for envelope in envelopes:
            self.round.confirmed.setdefault(envelope.event_id, confirmed)
        return outcomes


def run_benchmark(settings: RelaySettings, machine: dict[str, Any]) -> RelayResult:
    result = RelayResult(datetime.now(UTC), settings, machine)
    started = time.monotonic()
    ensure_servers(Endpoints.from_environment(), say=say)
    asyncio.run(_measure(settings, result))
    result.wall_seconds = time.monotonic() - started
    return result


async def _measure(settings: RelaySettings, result: RelayResult) -> None:
    name = f"repitbot_bench_relay_{infra.run_id()}"
    database_url = await infra.create_scratch_database_with_shared_tables(name)
    try:
        with infra.scratch_vhost(name) as rabbit_url:
            async with fleet_lock_async():
                for index in range(settings.rounds * len(WAYS)):
                    way = WAYS[index % len(WAYS)]
                    say(
                        f"round {index // len(WAYS) + 1}: {way}, {settings.commits_per_round} commits at {settings.rate}/s"
                    )
                    round_ = await _one_round(settings, way, database_url, rabbit_url)
                    result.rounds.append(round_)
                    missing = len(round_.committed) - len(round_.confirmed.keys() & round_.committed.keys())
                    if missing:
                        result.problems.append(f"{way}: {missing} events not confirmed")
    finally:
        await infra.drop_database(name)


async def _one_round(settings: RelaySettings, way: str, database_url: str, rabbit_url: str) -> Round:
    round_ = Round(way)
    db = Database(database_url, service=SERVICE)
    relay = ThreadedOutboxRelay(
        db, lambda: _TimedBus(rabbit_url, service=SERVICE, role="outbox-relay", round_=round_), poll_seconds=5.0
    )
    await relay.start()
    if way == NOTIFY:
        db.outbox_handoff = None  # the commits notify; the relay's passes claim them
    try:
        await eventually(_relay_connected, timeout=DRAIN_TIMEOUT_SECONDS, what="the relay's broker connection")
        thread = next(t for t in threading.enumerate() if t.name == f"outbox-relay-{SERVICE}")
        warmup = settings.rate * settings.warmup_seconds

        async def commit(index: int) -> None:
            async with db.transaction() as session:
                envelope = await add_event(session, _payload())
                if index >= warmup:
                    # the moment the commit returns, before the outbox hands the event over (its own
                    # after-commit callback is registered at the commit, after this one)
                    after_commit(session, lambda: round_.committed.setdefault(envelope.event_id, time.perf_counter()))
            _hold_the_interpreter(settings.busy_ms / 1000)

        await paced(range(warmup), settings.rate, commit)
        relay_before = _thread_cpu(thread)
        with cpu.measuring(lambda: {"postgres": cpu.processes_named("postgres")}) as usage:
            await paced(range(warmup, settings.commits_per_round), settings.rate, commit)
            await eventually(
                lambda: round_.committed.keys() <= round_.confirmed.keys(),
                timeout=DRAIN_TIMEOUT_SECONDS,
                what="every event published and confirmed",
            )
        round_.relay_cpu_seconds = _thread_cpu(thread) - relay_before
        round_.postgres_cpu_seconds = usage.seconds.get("postgres", 0.0)
        round_.measured_events = len(round_.committed)
        await eventually(_no_backlog(relay), timeout=DRAIN_TIMEOUT_SECONDS, what="every row marked published")
    finally:
        await relay.stop()
        await db.dispose()
    return round_


def _payload() -> UserUpdated:
    return UserUpdated(user_id=uuid.uuid4(), full_name="Bench User", timezone="Europe/Moscow", language="ru")


def _hold_the_interpreter(seconds: float) -> None:
    """The rest of a request: Python running on the loop's thread, the interpreter held meanwhile."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _relay_connected() -> bool:
    return REGISTRY.get_sample_value("broker_connected", {"service": SERVICE, "role": "outbox-relay"}) == 1


def _no_backlog(relay: ThreadedOutboxRelay) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await relay.backlog() == 0

    return check
