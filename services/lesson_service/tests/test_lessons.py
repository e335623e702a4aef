"""Scheduling, the overlap rule (enforced by the database), completing, listing, and the events they leave."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from services.lesson_service.tests.conftest import (
    People,
    assert_error,
    at,
    lesson_body,
    outbox_payloads,
    schedule,
)


async def test_a_tutor_schedules_a_lesson_and_it_is_announced(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    body = lesson_body(
        student,
        topic="Quadratic equations",
        lesson_type="exam_prep",
        price=250000,
        currency="RUB",
        online_url="https://meet.example.com/abc",
    )
    response = await client.post("/api/v1/lessons", json=body, headers=tutor.headers)
    assert response.status_code == 201, response.text
    lesson = response.json()
    assert lesson["status"] == "scheduled"
    assert lesson["tutor_id"] == tutor.id and lesson["student_id"] == student.id
    assert lesson["duration_minutes"] == 60 and lesson["lesson_type"] == "exam_prep"
    assert (lesson["price"], lesson["currency"]) == (250000, "RUB")

    [event] = await outbox_payloads(db, "lesson.scheduled", lesson_id=lesson["id"])
    assert event["tutor_id"] == tutor.id and event["student_id"] == student.id
    assert event["lesson_type"] == "exam_prep" and event["price"] == 250000 and event["currency"] == "RUB"
    assert event["topic"] == "Quadratic equations" and event["chargeable"] is True

    read = await client.get(f"/api/v1/lessons/{lesson['id']}", headers=student.headers)
    assert read.status_code == 200 and read.json()["id"] == lesson["id"]


async def test_a_lesson_already_held_is_recorded_with_a_start_in_the_past(
    client: httpx.AsyncClient, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student, starts_at=at(days=-3))
    assert lesson["status"] == "scheduled"
    done = await client.post(f"/api/v1/lessons/{lesson['id']}/complete", json={"grade": 4}, headers=tutor.headers)
    assert done.status_code == 200 and done.json()["status"] == "completed"


async def test_overlapping_lessons_of_one_tutor_are_refused_naming_the_lesson(
    client: httpx.AsyncClient, people: People
) -> None:
    tutor = people.tutor()
    student, other_student = people.student_of(tutor), people.student_of(tutor)
    first = await schedule(client, tutor, student, starts_at=at(days=2, hours=0))

    clash = await client.post(
        "/api/v1/lessons", json=lesson_body(other_student, at(days=2, hours=0.5)), headers=tutor.headers
    )
    error = assert_error(clash, 409, "lesson_overlap")
    assert error["details"]["conflicting_lesson_id"] == first["id"]

    # back to back is fine: [start, end)
    await schedule(client, tutor, other_student, starts_at=at(days=2, hours=1))
    # another tutor's lesson at the same time is not a double booking
    other_tutor = people.tutor()
    await schedule(client, other_tutor, people.student_of(other_tutor), starts_at=at(days=2, hours=0))
    # a cancelled lesson frees its slot
    cancel = await client.post(f"/api/v1/lessons/{first['id']}/cancel", json={}, headers=tutor.headers)
    assert cancel.status_code == 200, cancel.text
    await schedule(client, tutor, other_student, starts_at=at(days=2, hours=0))


async def test_twenty_concurrent_requests_for_overlapping_slots_book_exactly_one(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    students = [people.student_of(tutor) for _ in range(20)]
    # twenty overlapping slots, each starting 2 minutes after the previous one
    requests = [
        client.post(
            "/api/v1/lessons",
            json=lesson_body(student, at(days=5, hours=i / 30)),
            headers=tutor.headers,
        )
        for i, student in enumerate(students)
    ]
    responses = await asyncio.gather(*requests)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [r.text for r in responses if r.status_code not in (201, 409)]
    winner = next(r.json() for r in responses if r.status_code == 201)
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["error"]["details"]["conflicting_lesson_id"] == winner["id"]
    count = await db.fetchval("SELECT count(*) FROM lessons WHERE tutor_id = $1::uuid", tutor.id)
    assert count == 1


async def test_completing_records_the_lesson_once(client: httpx.AsyncClient, people: People, db: asyncpg.Pool) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student, topic="Fractions")
    body = {
        "grade": 5,
        "notes": "Solid work",
        "topic": "Fractions and decimals",
        "attendance": "late",
        "mastery": "mastered",
        "mastery_comment": "Can explain it back",
        "skills": ["mental arithmetic", "word problems"],
    }
    url = f"/api/v1/lessons/{lesson['id']}/complete"
    done = await client.post(url, json=body, headers=tutor.headers)
    assert done.status_code == 200, done.text
    completed = done.json()
    assert completed["status"] == "completed" and completed["grade"] == 5
    assert completed["topic"] == "Fractions and decimals" and completed["attendance"] == "late"
    assert completed["skills"] == ["mental arithmetic", "word problems"] and completed["mastery"] == "mastered"

    again = await client.post(url, json=body, headers=tutor.headers)
    assert_error(again, 409, "lesson_completed")

    [event] = await outbox_payloads(db, "lesson.completed", lesson_id=lesson["id"])
    assert event["grade"] == 5 and event["mastery"] == "mastered" and event["attendance"] == "late"
    assert event["topic"] == "Fractions and decimals" and event["mastery_comment"] == "Can explain it back"
    assert event["skills"] == ["mental arithmetic", "word problems"] and event["chargeable"] is True


async def test_an_idempotency_key_repeat_returns_the_first_answer(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student)
    url = f"/api/v1/lessons/{lesson['id']}/complete"
    headers = {**tutor.headers, "Idempotency-Key": "complete-" + lesson["id"]}
    first = await client.post(url, json={"grade": 3}, headers=headers)
    repeat = await client.post(url, json={"grade": 3}, headers=headers)
    assert first.status_code == repeat.status_code == 200
    assert repeat.content == first.content and repeat.headers["idempotent-replayed"] == "true"
    assert len(await outbox_payloads(db, "lesson.completed", lesson_id=lesson["id"])) == 1
    assert_error(await client.post(url, json={"grade": 4}, headers=headers), 422, "idempotency_key_reused")


async def test_invalid_lessons_answer_422_naming_the_field(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    cases = [
        ({"grade": 6}, "complete"),
    ]
    for bad, field in (
        ({"duration_minutes": 5}, "duration_minutes"),
        ({"lesson_type": "lecture"}, "lesson_type"),
        ({"starts_at": "2026-03-03T10:00:00"}, "starts_at"),  # no offset
        ({"price": -1}, "price"),
        ({"currency": "rub"}, "currency"),
    ):
        response = await client.post("/api/v1/lessons", json=lesson_body(student, **bad), headers=tutor.headers)
        error = assert_error(response, 422, "validation_error")
        assert error["details"][0]["field"] == field
    lesson = await schedule(client, tutor, student)
    for bad, _ in cases:
        response = await client.post(f"/api/v1/lessons/{lesson['id']}/complete", json=bad, headers=tutor.headers)
        assert assert_error(response, 422)["details"][0]["field"] == "grade"


async def test_the_list_shows_the_callers_lessons_in_range(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student, sibling = people.student_of(tutor), people.student_of(tutor)
    parent = people.parent_of(student)
    mine = [await schedule(client, tutor, student, starts_at=at(days=d)) for d in (1, 2, 3)]
    theirs = await schedule(client, tutor, sibling, starts_at=at(days=2, hours=3))
    other_tutor = people.tutor()
    await schedule(client, other_tutor, people.student_of(other_tutor), starts_at=at(days=2))

    params = {"from": at(days=1.5), "to": at(days=3.5)}
    listed = await client.get("/api/v1/lessons", params=params, headers=tutor.headers)
    assert listed.status_code == 200, listed.text
    assert [x["id"] for x in listed.json()["items"]] == [mine[1]["id"], theirs["id"], mine[2]["id"]]
    assert listed.json()["next_cursor"] is None

    as_student = (await client.get("/api/v1/lessons", params=params, headers=student.headers)).json()["items"]
    assert [x["id"] for x in as_student] == [mine[1]["id"], mine[2]["id"]]
    # the parent's children come from the local links (a parent names the child once: the link is cached)
    named = await client.get("/api/v1/lessons", params={**params, "student_id": student.id}, headers=parent.headers)
    assert [x["id"] for x in named.json()["items"]] == [mine[1]["id"], mine[2]["id"]]
    as_parent = (await client.get("/api/v1/lessons", params=params, headers=parent.headers)).json()["items"]
    assert [x["id"] for x in as_parent] == [mine[1]["id"], mine[2]["id"]]

    first = await client.get("/api/v1/lessons", params={**params, "limit": 2}, headers=tutor.headers)
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await client.get(
        "/api/v1/lessons", params={**params, "limit": 2, "cursor": page["next_cursor"]}, headers=tutor.headers
    )
    assert [x["id"] for x in rest.json()["items"]] == [mine[2]["id"]]
