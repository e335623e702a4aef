"""When an event was committed and when its XP became visible, per lesson.

*Visible*: a bench-only trigger on student-service's ``xp_ledger`` (installed in the
bench database after migrations, removed with it) does ``pg_notify('bench_xp',
source_key)`` for each new award. PostgreSQL delivers a notification when the
transaction that sent it commits, so its arrival is the moment the award became
visible to any read — the student-service API's included — without polling it. The
listener runs on its own thread and event loop, so the harness's own work never
delays a stamp.

*Committed*: the ``created_at`` of the lesson's ``lesson.completed`` outbox row:
``clock_timestamp()`` when ``add_event`` inserted it, inside the completing
transaction, just before its commit — so a latency from it is, if anything, a little
long. PostgreSQL and the harness read the same system clock.

*In between*, for where the time goes: the row's ``published_at`` (when the relay began
publishing it: the relay's clock for an event the commit handed over, ``now()`` of the claiming
pass for one it found by a NOTIFY or the poll) and student-service's ``inbox_events.received_at``
for the event (``now()`` of the consumer's transaction that applied it: when it began).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg

from shared.db import asyncpg_dsn

CHANNEL = "bench_xp"
LESSON_KEY_PREFIX = "lesson:"  # student-service's source_key of a lesson's award
_INSTALL = f"""
CREATE OR REPLACE FUNCTION bench_xp_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.source_key);
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS bench_xp_notify ON xp_ledger;
CREATE TRIGGER bench_xp_notify AFTER INSERT ON xp_ledger FOR EACH ROW EXECUTE FUNCTION bench_xp_notify();
"""


async def install_xp_trigger(student_database_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(student_database_url), timeout=10)
    try:
        await connection.execute(_INSTALL)
    finally:
        await connection.close()


async def _fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """One query on a connection of its own (the probes run between phases, a few times a run)."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


class XpWatcher:
    """Collects ``lesson id → wall-clock time its XP award committed`` from the trigger's notifications."""

    def __init__(self, student_database_url: str) -> None:
        self._dsn = asyncpg_dsn(student_database_url)
        self.visible_at: dict[str, float] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-xp-watcher", daemon=True)
        self._connection: asyncpg.Connection | None = None
        self._arrived = threading.Condition()

    def start(self) -> XpWatcher:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=15)
        return self

    def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._connection.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _listen(self) -> None:
        self._connection = await asyncpg.connect(self._dsn, timeout=10)
        await self._connection.add_listener(CHANNEL, self._on_notify)

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        now = time.time()
        if payload.startswith(LESSON_KEY_PREFIX):
            with self._arrived:
                self.visible_at.setdefault(payload.removeprefix(LESSON_KEY_PREFIX), now)
                self._arrived.notify_all()

    def wait_for(self, lesson_ids: Iterable[str], timeout: float) -> list[str]:
        """Block until every lesson's XP is visible or ``timeout`` passes; returns those still missing."""
        wanted = set(lesson_ids)
        deadline = time.monotonic() + timeout
        with self._arrived:
            while missing := wanted - self.visible_at.keys():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return sorted(missing)
                self._arrived.wait(timeout=min(remaining, 1.0))
        return []


@dataclass(frozen=True)
class OutboxTimes:
    """A lesson's ``lesson.completed`` in lesson-service's outbox (times in epoch seconds)."""

    event_id: str
    committed: float  # the row written, just before the completing transaction's commit
    claimed: float | None  # the relay's pass that published it began; None: not published


async def outbox_times(lesson_database_url: str, lesson_ids: Iterable[str]) -> dict[str, OutboxTimes]:
    """Lesson id → its ``lesson.completed`` outbox row's id and times."""
    rows = await _fetch(
        lesson_database_url,
        "SELECT envelope->'payload'->>'lesson_id' AS lesson_id, id::text AS event_id,"
        " extract(epoch FROM created_at) AS committed, extract(epoch FROM published_at) AS claimed"
        " FROM outbox_events WHERE event_type = 'lesson.completed'"
        " AND envelope->'payload'->>'lesson_id' = ANY($1::text[])",
        list(lesson_ids),
    )
    return {
        row["lesson_id"]: OutboxTimes(
            row["event_id"], float(row["committed"]), None if row["claimed"] is None else float(row["claimed"])
        )
        for row in rows
    }


async def received_at(database_url: str, event_ids: Iterable[str]) -> dict[str, float]:
    """Event id → when the transaction that applied it in this service's database began (its inbox row)."""
    rows = await _fetch(
        database_url,
        "SELECT event_id::text AS event_id, extract(epoch FROM received_at) AS at"
        " FROM inbox_events WHERE event_id = ANY($1::uuid[])",
        list(event_ids),
    )
    return {row["event_id"]: float(row["at"]) for row in rows}


# the path in three stages, each from one stamp to the next
STAGES = (
    "committed -> the relay begins publishing",
    "-> student-service's transaction begins",
    "-> that transaction commits (XP visible)",
)


def stage_latencies_ms(
    lesson_ids: Iterable[str],
    outbox: Mapping[str, OutboxTimes],
    received: Mapping[str, float],
    visible: Mapping[str, float],
) -> dict[str, list[float]]:
    """Each stage's milliseconds, for every lesson with all four stamps."""
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for lesson_id in lesson_ids:
        row = outbox.get(lesson_id)
        if row is None or row.claimed is None or row.event_id not in received or lesson_id not in visible:
            continue
        stamps = (row.committed, row.claimed, received[row.event_id], visible[lesson_id])
        for stage, start, end in zip(STAGES, stamps, stamps[1:], strict=False):
            stages[stage].append((end - start) * 1000)
    return stages


async def completed_lessons(lesson_database_url: str) -> dict[str, int]:
    """Student id → how many of their lessons lesson-service has recorded as completed."""
    rows = await _fetch(
        lesson_database_url,
        "SELECT student_id::text AS student_id, count(*) AS n FROM lessons WHERE status = 'completed'"
        " GROUP BY student_id",
    )
    return {row["student_id"]: int(row["n"]) for row in rows}
