"""Fault injection on the running fleet (issue 9): the path a completed lesson takes — lesson-service's
outbox → RabbitMQ → payment-service's charge and student-service's XP — with its links cut and its
consumer killed, at ``PROOF_SCALE`` lessons. The promise: 0 lost, 0 doubled, and no half-written rows.

lesson-, payment- and student-service reach PostgreSQL and RabbitMQ through the test fleet's proxies
(shared/testing/fleet.py, ``fleet.links``). Checks read the databases directly (not through a proxy),
so they work while a link is cut. Requests go straight to lesson-service with the tutor's token: the
gateway's per-user rate limit is not what these tests are about.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from shared.runner import logs
from shared.testing.accounts import Account, invite, register
from shared.testing.events import eventually
from shared.testing.fleet import FAULT_INJECTABLE, TestFleet
from shared.testing.scale import proof_scale

pytestmark = pytest.mark.proof

PRICE = 100_000  # minor units
LESSON_XP_GRADE_5 = 200  # a regular lesson graded 5 (services/student_service/domain/xp.py)
CONCURRENCY = 8
SERIES_LIMIT = 100  # lesson-service's max_series_lessons
SETTLE_SECONDS = 120.0  # how long a backlog may take to drain on a busy 2-core machine


@pytest.fixture
async def faults(fleet: TestFleet) -> AsyncIterator[TestFleet]:
    """The fleet, with every cut link restored afterwards, whatever the test did."""
    yield fleet
    for name in FAULT_INJECTABLE:
        fleet.links(name).restore()


async def _tutor_and_student(fleet: TestFleet, who: str) -> tuple[Account, Account]:
    async with fleet.client("api-gateway") as gateway:
        tutor = await register(gateway, f"{who} tutor")
        student = await register(gateway, f"{who} student", await invite(gateway, tutor, "student"))
        price = await gateway.put(
            "/api/v1/payments/prices/default", json={"amount": PRICE, "currency": "RUB"}, headers=tutor.headers
        )
        assert price.status_code == 200, price.text
    return tutor, student


async def _held_lessons(fleet: TestFleet, tutor: Account, student: Account, count: int) -> list[str]:
    """``count`` daily lessons already held (all in the past), in series of at most SERIES_LIMIT."""
    ids: list[str] = []
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    async with fleet.client("lesson-service", headers=tutor.headers, timeout=30) as lessons:
        while len(ids) < count:
            size = min(SERIES_LIMIT, count - len(ids))
            first = today - timedelta(days=len(ids) + size + 1)
            body = {
                "student_id": student.id,
                "starts_at": first.isoformat(),
                "duration_minutes": 45,
                "subject": "Maths",
                "weekdays": ["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
                "count": size,
                "timezone": "UTC",
            }
            response = await _until_linked(lambda body=body: lessons.post("/api/v1/lessons/series", json=body))
            assert response.status_code == 201, response.text
            ids += [lesson["id"] for lesson in response.json()["lessons"]]
    return ids


async def _until_linked(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """lesson-service may learn of a brand-new student link a moment after the invite: retry its 404."""
    response = await send()
    for _ in range(100):
        if response.status_code != 404:
            break
        await asyncio.sleep(0.05)
        response = await send()
    return response


async def _complete(
    fleet: TestFleet, tutor: Account, lesson_ids: Iterable[str], *, after_each: Callable[[int], None] | None = None
) -> None:
    """Complete each lesson (grade 5) with CONCURRENCY requests in flight; every one must be 200."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    done = 0
    async with fleet.client("lesson-service", headers=tutor.headers, timeout=30) as lessons:

        async def complete(lesson_id: str) -> None:
            nonlocal done
            async with semaphore:
                response = await lessons.post(f"/api/v1/lessons/{lesson_id}/complete", json={"grade": 5})
            assert response.status_code == 200, response.text
            done += 1
            if after_each is not None:
                after_each(done)

        await asyncio.gather(*(complete(lesson_id) for lesson_id in lesson_ids))


async def _fetch(fleet: TestFleet, service: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(fleet.direct_database_url(service))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _charges(fleet: TestFleet, lesson_ids: list[str]) -> dict[str, int]:
    """Lesson id → how many charge rows payment-service's ledger holds for it."""
    rows = await _fetch(
        fleet,
        "payment-service",
        "SELECT lesson_id::text AS lesson_id, count(*) AS n FROM ledger_entries "
        "WHERE lesson_id = ANY($1::uuid[]) GROUP BY lesson_id",
        lesson_ids,
    )
    return {row["lesson_id"]: row["n"] for row in rows}


async def _lesson_awards(fleet: TestFleet, student: Account) -> list[asyncpg.Record]:
    return await _fetch(
        fleet,
        "student-service",
        "SELECT source_key, source_event_id, amount FROM xp_ledger WHERE student_id = $1 AND source = 'lesson'",
        uuid.UUID(student.id),
    )


async def _unpublished(fleet: TestFleet, service: str) -> int:
    rows = await _fetch(fleet, service, "SELECT count(*) AS n FROM outbox_events WHERE published_at IS NULL")
    return int(rows[0]["n"])


async def _assert_each_lesson_charged_and_awarded_once(
    fleet: TestFleet, student: Account, lesson_ids: list[str]
) -> None:
    count = len(lesson_ids)

    async def all_charged() -> bool:
        return len(await _charges(fleet, lesson_ids)) == count

    async def all_awarded() -> bool:
        return len(await _lesson_awards(fleet, student)) >= count

    await eventually(all_charged, timeout=SETTLE_SECONDS, what=f"a charge for each of the {count} lessons")
    await eventually(all_awarded, timeout=SETTLE_SECONDS, what=f"XP for each of the {count} lessons")

    charges = await _charges(fleet, lesson_ids)
    assert set(charges) == set(lesson_ids)  # 0 lost
    assert set(charges.values()) == {1}  # 0 doubled
    awards = await _lesson_awards(fleet, student)
    assert len(awards) == count  # 0 lost, 0 doubled
    assert len({award["source_event_id"] for award in awards}) == count  # one award per lesson.completed
    assert {award["amount"] for award in awards} == {LESSON_XP_GRADE_5}

    async with fleet.client("payment-service", headers=student.headers) as payments:
        balance = (await payments.get(f"/api/v1/payments/balances/{student.id}")).json()
    assert balance["balance"] == -PRICE * count, balance  # no top-up: exactly the charges, as a debt
    async with fleet.client("student-service", headers=student.headers) as students:
        profile = (await students.get(f"/api/v1/students/{student.id}/profile")).json()
    assert profile["xp"] == LESSON_XP_GRADE_5 * count, profile
    for service in ("lesson-service", "payment-service", "student-service"):

        async def drained(service: str = service) -> bool:
            return await _unpublished(fleet, service) == 0

        # the award's own events commit with it and are published a moment later
        await eventually(drained, timeout=SETTLE_SECONDS, what=f"{service} publishes every event it holds")


async def test_broker_links_cut_while_lessons_are_completed_lose_and_double_nothing(faults: TestFleet) -> None:
    """The producer's broker link is cut for the middle third of the completions, and the consumers'
    links for a stretch overlapping it; every lesson is still charged once and awarded XP once."""
    fleet = faults
    count = proof_scale()
    tutor, student = await _tutor_and_student(fleet, "broker cut")
    lesson_ids = await _held_lessons(fleet, tutor, student, count)
    lesson_broker = fleet.links("lesson-service").broker
    consumer_brokers = [fleet.links(name).broker for name in ("payment-service", "student-service")]

    def inject(done: int) -> None:
        if done == count // 4:
            for broker in consumer_brokers:
                broker.cut()
        elif done == count // 3:
            lesson_broker.cut()
        elif done == 2 * count // 3:
            lesson_broker.restore()
        elif done == 3 * count // 4:
            for broker in consumer_brokers:
                broker.restore()

    await _complete(fleet, tutor, lesson_ids, after_each=inject)
    assert lesson_broker.connections_seen >= 2  # it reconnected after the cut
    await _assert_each_lesson_charged_and_awarded_once(fleet, student, lesson_ids)


async def test_a_consumer_killed_mid_batch_applies_every_event_once(faults: TestFleet) -> None:
    """student-service's consumer is SIGKILLed while it works through a backlog; supervisord restarts
    it, RabbitMQ redelivers what was unacknowledged, and the inbox keeps every award single."""
    fleet = faults
    count = proof_scale()
    tutor, student = await _tutor_and_student(fleet, "killed consumer")
    lesson_ids = await _held_lessons(fleet, tutor, student, count)
    student_broker = fleet.links("student-service").broker
    student_broker.cut()  # the backlog builds up in student-service's queue
    await _complete(fleet, tutor, lesson_ids)

    async def all_charged() -> bool:
        return len(await _charges(fleet, lesson_ids)) == count

    await eventually(all_charged, timeout=SETTLE_SECONDS, what="payment-service charged every lesson")
    victim = fleet.pids()["student-service"]
    student_broker.restore()

    async def started_on_the_backlog() -> bool:
        return len(await _lesson_awards(fleet, student)) > 0

    await eventually(started_on_the_backlog, timeout=SETTLE_SECONDS, what="student-service starts on the backlog")
    os.kill(victim, signal.SIGKILL)
    applied_before_the_kill = len(await _lesson_awards(fleet, student))
    assert applied_before_the_kill < count, "the backlog was drained before the kill: nothing was proven"

    def restarted() -> bool:
        return fleet.pids().get("student-service", 0) not in (0, victim)

    await eventually(restarted, timeout=60, what="supervisord restarts student-service")
    await _assert_each_lesson_charged_and_awarded_once(fleet, student, lesson_ids)


async def test_the_database_cut_under_load_answers_503_then_recovers_with_no_half_written_rows(
    faults: TestFleet,
) -> None:
    """lesson-service's database link is cut for the middle of a burst of keyed lesson creations:
    meanwhile it answers 503 (never 500, never a hang) and /ready says so; after the link returns it
    reconnects by itself; a retry of every refused request with its key leaves exactly one lesson per
    key, and every lesson row has its lesson.scheduled event (the change and its event are one commit)."""
    fleet = faults
    count = proof_scale()
    tutor, student = await _tutor_and_student(fleet, "database cut")
    database = fleet.links("lesson-service").database
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    keys = [f"db-cut-{uuid.uuid4()}" for _ in range(count)]
    bodies = {
        key: {
            "student_id": student.id,
            "starts_at": (start + timedelta(hours=index)).isoformat(),
            "duration_minutes": 30,
            "subject": "Physics",
        }
        for index, key in enumerate(keys)
    }
    statuses: dict[str, int] = {}
    ready_while_cut: list[int] = []
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with fleet.client("lesson-service", headers=tutor.headers, timeout=30) as lessons:
        first = await _until_linked(
            lambda: lessons.post("/api/v1/lessons", json=bodies[keys[0]], headers={"Idempotency-Key": keys[0]})
        )
        statuses[keys[0]] = first.status_code

        async def create(key: str) -> None:
            async with semaphore:
                response = await lessons.post("/api/v1/lessons", json=bodies[key], headers={"Idempotency-Key": key})
            statuses[key] = response.status_code
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "service_unavailable", response.text
            answered = len(statuses)
            if answered == count // 3:
                database.cut()
                ready_while_cut.append((await lessons.get("/ready")).status_code)
            elif answered == 2 * count // 3:
                database.restore()

        await asyncio.gather(*(create(key) for key in keys[1:]))
        assert set(statuses.values()) <= {201, 503}, sorted(set(statuses.values()))
        assert ready_while_cut == [503]
        refused = [key for key, status in statuses.items() if status == 503]
        assert refused, "no request met the cut: nothing was proven"

        async def ready_again() -> bool:
            return (await lessons.get("/ready")).status_code == 200

        await eventually(ready_again, timeout=60, what="lesson-service reconnects to its database by itself")
        for key in refused:  # a client's retry with the same key
            again = await lessons.post("/api/v1/lessons", json=bodies[key], headers={"Idempotency-Key": key})
            assert again.status_code == 201, again.text

    rows = await _fetch(
        fleet,
        "lesson-service",
        "SELECT l.id::text AS id, count(o.id) AS events FROM lessons l "
        "LEFT JOIN outbox_events o ON o.event_type = 'lesson.scheduled' AND o.envelope->'payload'->>'lesson_id' = l.id::text "
        "WHERE l.tutor_id = $1 GROUP BY l.id",
        uuid.UUID(tutor.id),
    )
    assert len(rows) == count  # one lesson per key: none lost, none doubled by the retries
    assert {row["events"] for row in rows} == {1}  # each with its event, no row without one
    orphans = await _fetch(
        fleet,
        "lesson-service",
        "SELECT count(*) AS n FROM outbox_events o WHERE o.event_type = 'lesson.scheduled' "
        "AND o.envelope->'payload'->>'tutor_id' = $1 AND NOT EXISTS "
        "(SELECT 1 FROM lessons l WHERE l.id::text = o.envelope->'payload'->>'lesson_id')",
        tutor.id,
    )
    assert orphans[0]["n"] == 0  # no event without its lesson


async def test_one_requests_correlation_id_follows_it_through_the_fleet_and_its_events(fleet: TestFleet) -> None:
    """A lesson completed through the gateway with a correlation ID: the ID is in the gateway's,
    lesson-service's, payment-service's and student-service's log lines, in lesson.completed, and in
    the charge and XP events it caused, each pointing back at lesson.completed (``causation_id``);
    ``make logs CID=...`` (shared.runner.logs) gathers that trail."""
    tutor, student = await _tutor_and_student(fleet, "traced")
    [lesson_id] = await _held_lessons(fleet, tutor, student, 1)
    correlation_id = f"trail-{uuid.uuid4().hex}"
    async with fleet.client("api-gateway", headers=tutor.headers) as gateway:
        done = await gateway.post(
            f"/api/v1/lessons/{lesson_id}/complete", json={"grade": 5}, headers={"X-Correlation-ID": correlation_id}
        )
    assert done.status_code == 200, done.text
    assert done.headers["x-correlation-id"] == correlation_id
    await _assert_each_lesson_charged_and_awarded_once(fleet, student, [lesson_id])

    async def outbox(service: str, event_type: str) -> list[dict]:
        rows = await _fetch(
            fleet,
            service,
            "SELECT envelope FROM outbox_events WHERE event_type = $1 AND envelope->>'correlation_id' = $2",
            event_type,
            correlation_id,
        )
        return [json.loads(row["envelope"]) for row in rows]

    [completed] = await outbox("lesson-service", "lesson.completed")
    assert completed["payload"]["lesson_id"] == lesson_id
    [charged] = await outbox("payment-service", "payment.charged")
    [awarded] = await outbox("student-service", "student.xp_awarded")
    assert charged["causation_id"] == awarded["causation_id"] == completed["event_id"]

    services = ("api-gateway", "lesson-service", "payment-service", "student-service")

    def trail() -> set[str]:
        return {json.loads(line).get("service") for line in logs.lines_for_correlation_id(fleet.layout, correlation_id)}

    await eventually(lambda: set(services) <= trail(), timeout=30, what=f"log lines of {services} with the ID")
    lines = [json.loads(line) for line in logs.lines_for_correlation_id(fleet.layout, correlation_id)]
    consumed = {(line["service"], line.get("event_type")) for line in lines if line.get("message") == "event consumed"}
    assert {("payment-service", "lesson.completed"), ("student-service", "lesson.completed")} <= consumed
