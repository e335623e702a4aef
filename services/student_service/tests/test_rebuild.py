"""``cli rebuild``: the figures recomputed from the ledger and the study days equal those the events
built one by one, and repair a corrupted profile."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from services.student_service import cli
from services.student_service.tests.conftest import Events, profile_of
from services.student_service.tests.test_awards import completed, graded, linked, top_up, viewed
from shared.events.catalogue import PaymentRefunded
from shared.testing.service import People, Person

DAY = timedelta(days=1)
FIRST = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)

FIGURES = "SELECT student_id, xp, level, current_streak, longest_streak, freezes_held FROM profiles"


async def figures(db: asyncpg.Pool, students: list[Person]) -> dict[str, tuple[Any, ...]]:
    rows = await db.fetch(FIGURES + " WHERE student_id = ANY($1::uuid[])", [uuid.UUID(s.id) for s in students])
    return {str(r["student_id"]): tuple(r)[1:] for r in rows}


async def build(client: httpx.AsyncClient, events: Events, people: People) -> tuple[Person, list[Person]]:
    tutor = people.tutor()
    students = [people.student_of(tutor) for _ in range(3)]
    first, second, third = students
    await events.send(*(events.wrap(linked(tutor, s)) for s in students))
    payment = uuid.uuid4()
    # one event at a time, as they would come: study days Feb 10-16 (7: a freeze), 18 (17 frozen), 21 (broken)
    for n in (0, 1, 2, 3, 4, 5, 6, 8, 11):
        await events.send(events.wrap(completed(tutor, first, grade=5 if n % 2 else 4), occurred_at=FIRST + n * DAY))
    for envelope in (
        events.wrap(graded(tutor, first, 5), occurred_at=FIRST + 2 * DAY),
        events.wrap(viewed(tutor, second, uuid.uuid4()), occurred_at=FIRST),
        events.wrap(top_up(tutor, second, 4, payment), occurred_at=FIRST + DAY),
        events.wrap(
            PaymentRefunded(
                student_id=uuid.UUID(second.id),
                tutor_id=uuid.UUID(tutor.id),
                amount=100_000,
                currency="RUB",
                balance_after=0,
                refund_id=uuid.uuid4(),
                payment_id=payment,
            ),
            occurred_at=FIRST + 2 * DAY,
        ),
        events.wrap(completed(tutor, second, grade=5, lesson_type="exam_prep"), occurred_at=FIRST + 3 * DAY),
    ):
        await events.send(envelope)
    for body in ({"amount": 250, "reason": "olympiad"}, {"amount": -400, "reason": "double-counted lessons"}):
        response = await client.post(f"/api/v1/students/{third.id}/xp-adjustments", json=body, headers=tutor.headers)
        assert response.status_code == 201, response.text
    return tutor, students


async def test_a_rebuild_equals_the_profiles_built_event_by_event_and_repairs_corruption(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool, database_url: str
) -> None:
    _, students = await build(client, events, people)
    built = await figures(db, students)
    first, second, third = (built[s.id] for s in students)
    # xp, level, current streak, longest streak, freezes held
    assert first == (9 * 100 + 5 * 50 + 4 * 100 + 100, 7, 1, 8, 0)  # 7 days earn a freeze, spent on Feb 17
    assert second == (25 + 300, 3, 1, 1, 0)  # the top-up's 200 XP taken back by its refund
    assert third == (-150, 1, 0, 0, 0)  # a negative total is level 1
    for student in students:
        ledger = await db.fetchval("SELECT sum(amount) FROM xp_ledger WHERE student_id = $1", uuid.UUID(student.id))
        assert built[student.id][0] == ledger
    shown = [await profile_of(client, s) for s in students]

    assert await cli.rebuild(database_url) >= len(students)
    assert await figures(db, students) == built

    await db.execute(
        "UPDATE profiles SET xp = xp + 999, level = 42, current_streak = 7, longest_streak = 0, freezes_held = 2"
        " WHERE student_id = ANY($1::uuid[])",
        [uuid.UUID(s.id) for s in students],
    )
    assert await figures(db, students) != built
    # the command itself, as an operator runs it
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.student_service.cli",
        "rebuild",
        env={**os.environ, "DATABASE_URL": database_url, "ENV": "test"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(command.communicate(), 60)
    assert command.returncode == 0, stderr.decode()
    assert b"rebuilt" in stdout
    assert await figures(db, students) == built
    assert [await profile_of(client, s) for s in students] == shown
