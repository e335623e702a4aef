"""Rescheduling, cancelling (who, why, excused or chargeable, the late window) and no-shows."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import httpx

from services.lesson_service.tests.conftest import People, assert_error, at, outbox_payloads, schedule


async def test_rescheduling_moves_the_lesson_and_says_where_from(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student, starts_at=at(days=1))
    blocker = await schedule(client, tutor, people.student_of(tutor), starts_at=at(days=1, hours=4))

    moved = await client.patch(
        f"/api/v1/lessons/{lesson['id']}",
        json={"starts_at": at(days=1, hours=2), "duration_minutes": 90, "price": 300000},
        headers=tutor.headers,
    )
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["starts_at"]) == datetime.fromisoformat(at(days=1, hours=2))
    assert moved.json()["duration_minutes"] == 90 and moved.json()["price"] == 300000
    [event] = await outbox_payloads(db, "lesson.rescheduled", lesson_id=lesson["id"])
    assert event["previous_starts_at"].startswith(at(days=1)[:19]) and event["price"] == 300000

    clash = await client.patch(
        f"/api/v1/lessons/{lesson['id']}", json={"starts_at": at(days=1, hours=3.5)}, headers=tutor.headers
    )
    assert assert_error(clash, 409, "lesson_overlap")["details"]["conflicting_lesson_id"] == blocker["id"]
    assert_error(
        await client.patch(f"/api/v1/lessons/{lesson['id']}", json={"subject": None}, headers=tutor.headers), 422
    )


async def test_a_tutor_cancels_excused_by_default_or_chargeable_by_choice(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    free = await schedule(client, tutor, student, starts_at=at(hours=2))
    charged = await schedule(client, tutor, student, starts_at=at(days=3))

    response = await client.post(
        f"/api/v1/lessons/{free['id']}/cancel", json={"reason": "I am ill"}, headers=tutor.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled" and body["chargeable"] is False
    assert body["cancelled_by"] == tutor.id and body["cancelled_by_role"] == "tutor"
    assert body["cancel_reason"] == "I am ill"
    response = await client.post(
        f"/api/v1/lessons/{charged['id']}/cancel", json={"chargeable": True}, headers=tutor.headers
    )
    assert response.json()["chargeable"] is True

    [event] = await outbox_payloads(db, "lesson.cancelled", lesson_id=free["id"])
    assert event["cancelled_by_role"] == "tutor" and event["chargeable"] is False and event["reason"] == "I am ill"
    assert_error(await client.post(f"/api/v1/lessons/{free['id']}/cancel", json={}, headers=tutor.headers), 409)
    # the lesson is kept, cancelled: the tutor still sees it
    assert (await client.get(f"/api/v1/lessons/{free['id']}", headers=tutor.headers)).json()["status"] == "cancelled"


async def test_a_students_late_cancellation_is_chargeable_until_the_tutor_excuses_it(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    parent = people.parent_of(student)
    late = await schedule(client, tutor, student, starts_at=at(hours=23))  # inside the 24 h window
    early = await schedule(client, tutor, student, starts_at=at(hours=25))
    by_parent = await schedule(client, tutor, student, starts_at=at(hours=5))

    response = await client.post(
        f"/api/v1/lessons/{late['id']}/cancel", json={"reason": "exam at school"}, headers=student.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["chargeable"] is True and response.json()["cancelled_by_role"] == "student"
    # a student cannot make their own late cancellation free
    response = await client.post(
        f"/api/v1/lessons/{early['id']}/cancel", json={"chargeable": True}, headers=student.headers
    )
    assert response.json()["chargeable"] is False  # outside the window: free, whatever the body says
    response = await client.post(f"/api/v1/lessons/{by_parent['id']}/cancel", json={}, headers=parent.headers)
    assert response.json()["chargeable"] is True and response.json()["cancelled_by_role"] == "parent"
    started = await schedule(client, tutor, student, starts_at=at(hours=-0.5))
    assert_error(
        await client.post(f"/api/v1/lessons/{started['id']}/cancel", json={}, headers=student.headers),
        409,
        "lesson_started",
    )

    assert_error(await client.post(f"/api/v1/lessons/{late['id']}/excuse", headers=student.headers), 403)
    excused = await client.post(f"/api/v1/lessons/{late['id']}/excuse", headers=tutor.headers)
    assert excused.status_code == 200, excused.text
    assert excused.json()["chargeable"] is False and excused.json()["excused_by"] == tutor.id
    assert_error(await client.post(f"/api/v1/lessons/{late['id']}/excuse", headers=tutor.headers), 409)

    events = await outbox_payloads(db, "lesson.cancelled", lesson_id=late["id"])
    assert [(e["chargeable"], e["excused_by"]) for e in events] == [(True, None), (False, tutor.id)]


async def test_a_no_show_is_missed_and_chargeable(client: httpx.AsyncClient, people: People, db: asyncpg.Pool) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student, starts_at=at(hours=-2), topic="Vectors")
    response = await client.post(
        f"/api/v1/lessons/{lesson['id']}/missed", json={"reason": "did not come"}, headers=tutor.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "missed" and response.json()["attendance"] == "absent"
    assert response.json()["chargeable"] is True
    [event] = await outbox_payloads(db, "lesson.missed", lesson_id=lesson["id"])
    assert event["attendance"] == "absent" and event["chargeable"] is True and event["reason"] == "did not come"
    assert_error(await client.post(f"/api/v1/lessons/{lesson['id']}/complete", json={}, headers=tutor.headers), 409)
    assert_error(await client.post(f"/api/v1/lessons/{lesson['id']}/missed", json={}, headers=tutor.headers), 409)


async def test_pages_of_lessons_at_the_same_start_show_each_once(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    starts = at(days=5)
    ids = []
    for _ in range(4):  # a cancelled lesson frees its slot, so several can share one start
        lesson = await schedule(client, tutor, student, starts_at=starts)
        ids.append(lesson["id"])
        cancelled = await client.post(f"/api/v1/lessons/{lesson['id']}/cancel", json={}, headers=tutor.headers)
        assert cancelled.status_code == 200, cancelled.text
    seen, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/lessons", params=params, headers=student.headers)).json()
        seen += [x["id"] for x in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert sorted(seen) == sorted(ids)
