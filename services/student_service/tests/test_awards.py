"""XP from events, through the real consumer: a profile on student.linked, one ledger row per source
with its event, level-ups for every level crossed, and no second effect from a redelivery."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import asyncpg
import httpx

from services.student_service.tests.conftest import NOW, Events, profile_of
from shared.events.catalogue import (
    HomeworkGraded,
    LessonCompleted,
    MaterialViewed,
    PaymentReceived,
    PaymentRefunded,
    StudentLinked,
)
from shared.testing.service import People, Person


def linked(tutor: Person, student: Person) -> StudentLinked:
    return StudentLinked(
        student_id=uuid.UUID(student.id),
        principal_id=uuid.UUID(tutor.id),
        relation="tutor",
        tutor_id=uuid.UUID(tutor.id),
    )


def completed(
    tutor: Person, student: Person, grade: int | None = None, lesson_type: str = "regular"
) -> LessonCompleted:
    return LessonCompleted(
        lesson_id=uuid.uuid4(),
        tutor_id=uuid.UUID(tutor.id),
        student_id=uuid.UUID(student.id),
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW,
        subject="Maths",
        lesson_type=lesson_type,  # type: ignore[arg-type]
        grade=grade,  # type: ignore[arg-type]
    )


def graded(tutor: Person, student: Person, grade: int) -> HomeworkGraded:
    return HomeworkGraded(
        homework_id=uuid.uuid4(),
        tutor_id=uuid.UUID(tutor.id),
        student_id=uuid.UUID(student.id),
        title="Fractions",
        due_at=NOW,
        grade=grade,  # type: ignore[arg-type]
    )


def viewed(tutor: Person, student: Person, material_id: uuid.UUID) -> MaterialViewed:
    return MaterialViewed(
        material_id=material_id, owner_id=uuid.UUID(tutor.id), viewer_id=uuid.UUID(student.id), viewer_role="student"
    )


def top_up(tutor: Person, student: Person, lessons_covered: int, payment_id: uuid.UUID) -> PaymentReceived:
    return PaymentReceived(
        student_id=uuid.UUID(student.id),
        tutor_id=uuid.UUID(tutor.id),
        amount=100_000,
        currency="RUB",
        balance_after=100_000,
        payment_id=payment_id,
        method="card",
        lessons_covered=lessons_covered,
    )


async def test_student_linked_creates_an_empty_profile(
    client: httpx.AsyncClient, events: Events, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student), producer="user-service"))

    profile = await profile_of(client, student)
    assert profile == {
        "student_id": student.id,
        "display_name": None,
        "xp": 0,
        "level": 1,
        "next_level_xp": 100,
        "current_streak": 0,
        "longest_streak": 0,
        "achievements": [],
    }
    me = await client.get("/api/v1/students/me/profile", headers=student.headers)
    assert me.status_code == 200 and me.json() == profile
    assert await profile_of(client, student, viewer=tutor) == profile


async def test_a_stranger_gets_404_for_a_profile(client: httpx.AsyncClient, events: Events, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    other_tutor = people.tutor()
    response = await client.get(f"/api/v1/students/{student.id}/profile", headers=other_tutor.headers)
    assert response.status_code == 404
    assert (await client.get("/api/v1/students/me/profile", headers=tutor.headers)).status_code == 404


async def test_each_event_awards_the_tables_xp_with_its_source_event(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    material = uuid.uuid4()
    sent = [
        events.wrap(linked(tutor, student)),
        events.wrap(completed(tutor, student, grade=5)),  # 100 + 100
        events.wrap(completed(tutor, student, grade=4, lesson_type="exam_prep")),  # 150 + 50
        events.wrap(graded(tutor, student, 5)),  # 50 + 50
        events.wrap(graded(tutor, student, 3)),  # 50
        events.wrap(viewed(tutor, student, material)),  # 25
        events.wrap(viewed(tutor, student, material)),  # the same material again: nothing
        events.wrap(top_up(tutor, student, 3, uuid.uuid4())),  # 150
    ]
    await events.send(*sent)

    profile = await profile_of(client, student)
    assert profile["xp"] == 200 + 200 + 100 + 50 + 25 + 150 == 725
    assert profile["level"] == 4 and profile["next_level_xp"] == 800
    rows = await db.fetch(
        "SELECT amount, source, source_event_id FROM xp_ledger WHERE student_id = $1 ORDER BY occurred_at",
        uuid.UUID(student.id),
    )
    assert sorted(r["amount"] for r in rows) == sorted([200, 200, 100, 50, 25, 150])
    event_ids = {e.event_id for e in sent}
    assert all(r["source_event_id"] in event_ids for r in rows)

    history = await client.get(f"/api/v1/students/{student.id}/xp", headers=tutor.headers)
    assert history.status_code == 200, history.text
    items = history.json()["items"]
    assert sum(item["amount"] for item in items) == 725
    lesson_id = str(sent[1].payload["lesson_id"])
    assert [i["amount"] for i in items if i["source"] == "lesson" and i["source_id"] == lesson_id] == [200]


async def test_a_redelivered_event_has_no_second_effect(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = completed(tutor, student, grade=5)
    envelope = events.wrap(lesson)
    await events.send(envelope, envelope)
    await events.send(envelope)
    # the same lesson announced again under a new event id is still one award
    await events.send(events.wrap(lesson))

    assert (await profile_of(client, student))["xp"] == 200
    count = await db.fetchval("SELECT count(*) FROM xp_ledger WHERE student_id = $1", uuid.UUID(student.id))
    assert count == 1
    awarded = await db.fetchval(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'student.xp_awarded'"
        " AND envelope->'payload'->>'student_id' = $1",
        student.id,
    )
    assert awarded == 1


async def test_one_award_crossing_several_levels_announces_each(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(
        events.wrap(top_up(tutor, student, 10, uuid.uuid4()))
    )  # 500 XP: level 1 → 3 (282), short of 4 (519)

    assert (await profile_of(client, student))["level"] == 3
    rows = await db.fetch(
        "SELECT envelope->'payload' AS p FROM outbox_events WHERE event_type = 'student.level_up'"
        " AND envelope->'payload'->>'student_id' = $1",
        student.id,
    )
    levels = sorted((json.loads(r["p"])["previous_level"], json.loads(r["p"])["level"]) for r in rows)
    assert levels == [(1, 2), (2, 3)]


async def test_a_refunded_top_up_takes_its_xp_back(client: httpx.AsyncClient, events: Events, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    payment_id = uuid.uuid4()
    await events.send(events.wrap(top_up(tutor, student, 2, payment_id)))
    assert (await profile_of(client, student))["xp"] == 100
    refund = PaymentRefunded(
        student_id=uuid.UUID(student.id),
        tutor_id=uuid.UUID(tutor.id),
        amount=100_000,
        currency="RUB",
        balance_after=0,
        refund_id=uuid.uuid4(),
        payment_id=payment_id,
    )
    await events.send(events.wrap(refund), events.wrap(refund))
    profile = await profile_of(client, student)
    assert profile["xp"] == 0 and profile["level"] == 1


async def test_an_absent_student_earns_nothing_for_a_completed_lesson(
    client: httpx.AsyncClient, events: Events, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    absent = completed(tutor, student, grade=5).model_copy(update={"attendance": "absent"})
    await events.send(events.wrap(absent))
    assert (await profile_of(client, student))["xp"] == 0
