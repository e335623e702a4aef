"""Recurring series, the study plan, day and week views in each user's time zone, and iCalendar feeds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import icalendar

from services.lesson_service.tests.conftest import (
    NOW,
    People,
    Person,
    assert_error,
    at,
    lesson_body,
    outbox_payloads,
    schedule,
)
from shared.events.catalogue import UserRegistered, UserUpdated
from shared.events.envelope import Envelope
from shared.testing.events import eventually, publish


def starts(lessons: list[dict]) -> list[datetime]:
    return [datetime.fromisoformat(x["starts_at"]) for x in lessons]


async def series(client: httpx.AsyncClient, tutor: Person, student: Person, **fields) -> httpx.Response:
    return await client.post("/api/v1/lessons/series", json=lesson_body(student, **fields), headers=tutor.headers)


async def test_a_weekly_series_keeps_its_wall_clock_time_across_dst(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    response = await series(
        client,
        tutor,
        student,
        starts_at="2026-03-23T17:00:00+01:00",  # a Monday in Berlin, before the switch to summer time
        weekdays=["MO", "TH"],
        until="2026-04-02",
        timezone="Europe/Berlin",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rule"] == "FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20260402" and body["timezone"] == "Europe/Berlin"
    assert starts(body["lessons"]) == [
        datetime(2026, 3, 23, 16, tzinfo=UTC),
        datetime(2026, 3, 26, 16, tzinfo=UTC),
        datetime(2026, 3, 30, 15, tzinfo=UTC),  # 17:00 CEST
        datetime(2026, 4, 2, 15, tzinfo=UTC),
    ]
    assert {x["series_id"] for x in body["lessons"]} == {body["id"]}


async def test_a_series_with_one_clash_is_refused_whole(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    blocker = await schedule(client, tutor, people.student_of(tutor), starts_at="2026-03-16T14:30:00+00:00")
    response = await series(client, tutor, student, starts_at="2026-03-02T14:00:00+00:00", weekdays=["MO"], count=4)
    assert assert_error(response, 409, "lesson_overlap")["details"]["conflicting_lesson_id"] == blocker["id"]
    assert await db.fetchval("SELECT count(*) FROM lessons WHERE student_id = $1::uuid", student.id) == 0

    assert_error(await series(client, tutor, student, weekdays=["MO"], count=101), 422)
    assert_error(await series(client, tutor, student, weekdays=["MO"]), 422)  # neither until nor count
    assert_error(await series(client, tutor, student, weekdays=["XX"], count=2), 422)


async def test_one_occurrence_or_all_following_are_edited_and_cancelled(
    client: httpx.AsyncClient, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    created = await series(client, tutor, student, starts_at="2026-03-03T15:00:00+00:00", weekdays=["TU"], count=5)
    ids = [x["id"] for x in created.json()["lessons"]]

    one = await client.patch(f"/api/v1/lessons/{ids[0]}", json={"place": "Library"}, headers=tutor.headers)
    assert one.status_code == 200 and one.json()["place"] == "Library"
    moved = await client.patch(
        f"/api/v1/lessons/{ids[1]}",
        json={"starts_at": "2026-03-10T16:00:00+00:00", "scope": "following"},
        headers=tutor.headers,
    )
    assert moved.status_code == 200, moved.text
    cancelled = await client.post(
        f"/api/v1/lessons/{ids[3]}/cancel", json={"scope": "following", "reason": "holidays"}, headers=tutor.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    # a student cancels one lesson, never the whole series
    assert_error(
        await client.post(f"/api/v1/lessons/{ids[2]}/cancel", json={"scope": "following"}, headers=student.headers),
        403,
    )

    lessons = [(await client.get(f"/api/v1/lessons/{i}", headers=tutor.headers)).json() for i in ids]
    assert [x["status"] for x in lessons] == ["scheduled", "scheduled", "scheduled", "cancelled", "cancelled"]
    assert [x["place"] for x in lessons] == ["Library", None, None, None, None]
    assert [d.hour for d in starts(lessons)] == [15, 16, 16, 16, 16]


async def test_a_series_moves_together_even_through_its_own_old_slots(
    client: httpx.AsyncClient, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    created = await series(
        client, tutor, student, starts_at="2026-03-02T14:00:00+00:00", weekdays=["MO", "TU"], count=4
    )
    ids = [x["id"] for x in created.json()["lessons"]]
    # +23.5 h: each Monday lesson lands on the Tuesday lesson's old slot, which moves on to Wednesday
    moved = await client.patch(
        f"/api/v1/lessons/{ids[0]}",
        json={"starts_at": "2026-03-03T13:30:00+00:00", "scope": "following"},
        headers=tutor.headers,
    )
    assert moved.status_code == 200, moved.text
    lessons = [(await client.get(f"/api/v1/lessons/{i}", headers=tutor.headers)).json() for i in ids]
    assert [d.isoformat() for d in starts(lessons)] == [
        "2026-03-03T13:30:00+00:00",
        "2026-03-04T13:30:00+00:00",
        "2026-03-10T13:30:00+00:00",
        "2026-03-11T13:30:00+00:00",
    ]


async def test_the_study_plan_hands_out_topics_and_a_cancelled_lessons_topic_moves_on(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    plan = await client.put(
        f"/api/v1/lessons/plans/{student.id}",
        json={"topics": ["Sets", "Functions", "Limits", "Derivatives"]},
        headers=tutor.headers,
    )
    assert plan.status_code == 200, plan.text
    first, second, third = [await schedule(client, tutor, student, starts_at=at(days=d)) for d in (1, 2, 3)]
    typed = await schedule(client, tutor, student, starts_at=at(days=4), topic="Revision")
    assert typed["plan_topic_id"] is None  # a typed topic is the tutor's, not the plan's

    async def topics() -> list[str | None]:
        rows = await db.fetch(
            "SELECT topic FROM lessons WHERE student_id = $1::uuid AND status <> 'cancelled' ORDER BY starts_at",
            student.id,
        )
        return [row["topic"] for row in rows]

    assert first["topic"] == "Sets"  # the lesson.scheduled event carried it too
    assert await topics() == ["Sets", "Functions", "Limits", "Revision"]

    await client.post(f"/api/v1/lessons/{first['id']}/cancel", json={}, headers=tutor.headers)
    assert await topics() == ["Sets", "Functions", "Revision"]  # second now has Sets, third Functions
    # the lessons whose topic moved are announced with their new topic
    [moved] = await outbox_payloads(db, "lesson.rescheduled", lesson_id=second["id"], topic="Sets")
    assert datetime.fromisoformat(moved["previous_starts_at"]) == datetime.fromisoformat(moved["starts_at"])
    await client.post(f"/api/v1/lessons/{second['id']}/complete", json={"grade": 5}, headers=tutor.headers)
    await client.post(f"/api/v1/lessons/{third['id']}/missed", json={}, headers=tutor.headers)
    fifth = await schedule(client, tutor, student, starts_at=at(days=5))
    assert fifth["topic"] == "Functions"  # the missed lesson's topic was not lost
    assert (await client.get(f"/api/v1/lessons/{first['id']}", headers=tutor.headers)).json()["status"] == "cancelled"

    shown = await client.get(f"/api/v1/lessons/plans/{student.id}", headers=tutor.headers)
    assert [(t["title"], t["status"]) for t in shown.json()["topics"]] == [
        ("Sets", "covered"),
        ("Functions", "planned"),
        ("Limits", "pending"),
        ("Derivatives", "pending"),
    ]
    as_student = await client.get(
        f"/api/v1/lessons/plans/{student.id}", params={"tutor_id": tutor.id}, headers=student.headers
    )
    assert as_student.status_code == 200 and len(as_student.json()["topics"]) == 4
    assert_error(
        await client.put(f"/api/v1/lessons/plans/{student.id}", json={"topics": []}, headers=student.headers), 403
    )
    assert_error(
        await client.put(f"/api/v1/lessons/plans/{student.id}", json={"topics": []}, headers=people.tutor().headers),
        404,
    )
    assert_error(
        await client.put(f"/api/v1/lessons/plans/{student.id}", json={"topics": ["A", "A"]}, headers=tutor.headers),
        422,
    )


async def test_concurrent_changes_to_one_students_planned_lessons_take_turns_instead_of_deadlocking(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    """Each change reflows the plan over all the pair's lessons while holding its own lesson's row: the
    tutor, the student and a parent cancelling three lessons at once, with a completion and an edit,
    answered 500 (PostgreSQL: deadlock detected) before the pair's lock (found by the authorisation
    matrix, tests/test_authorisation_matrix.py)."""
    tutor = people.tutor()
    student = people.student_of(tutor)
    parent = people.parent_of(student)
    topics = ["Sets", "Functions", "Limits", "Derivatives", "Integrals", "Series", "Vectors"]
    plan = await client.put(f"/api/v1/lessons/plans/{student.id}", json={"topics": topics}, headers=tutor.headers)
    assert plan.status_code == 200, plan.text
    lessons = [await schedule(client, tutor, student, starts_at=at(days=60 + day)) for day in range(7)]

    def post(index: int, action: str, who: Person) -> Any:
        return client.post(f"/api/v1/lessons/{lessons[index]['id']}/{action}", json={}, headers=who.headers)

    responses = await asyncio.gather(
        post(0, "cancel", tutor),
        post(1, "cancel", student),
        post(2, "cancel", parent),
        post(3, "complete", tutor),
        client.patch(f"/api/v1/lessons/{lessons[4]['id']}", json={"place": "Library"}, headers=tutor.headers),
        schedule(client, tutor, student, starts_at=at(days=70)),
    )
    assert [r.status_code for r in responses[:5]] == [200] * 5, [r.text for r in responses[:5]]
    rows = await db.fetch(
        "SELECT status, topic FROM lessons WHERE student_id = $1::uuid ORDER BY starts_at", student.id
    )
    assert [row["status"] for row in rows] == ["cancelled"] * 3 + ["completed"] + ["scheduled"] * 4
    # the cancelled lessons' topics moved on to the lessons still scheduled, none lost, none twice
    assert [row["topic"] for row in rows[3:]] == [rows[3]["topic"], *[t for t in topics if t != rows[3]["topic"]][:4]]


async def test_a_change_waiting_for_the_pairs_lock_holds_no_lesson_row_meanwhile(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    """A change reads its lesson, takes the pair's lock and locks the lesson's row in one statement
    (``plans.lock_lesson_and_its_pair``). The row must be locked after the pair's lock, as ``lock_pair``
    promises: a request that held the row while waiting for the pair would deadlock with a reflow."""
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student, starts_at=at(days=-1))
    async with db.acquire() as holder, holder.transaction():
        await holder.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('lessons:' || $1::uuid || ':' || $2::uuid, 0))",
            tutor.id,
            student.id,
        )
        completing = asyncio.create_task(
            client.post(f"/api/v1/lessons/{lesson['id']}/complete", json={}, headers=tutor.headers)
        )

        async def waits_for_the_pair() -> bool:
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid <> $1",
                    holder.get_server_pid(),
                )
            )

        await eventually(waits_for_the_pair, what="the request waiting for the pair's lock")
        # NOWAIT fails at once if the waiting request holds the row
        await holder.execute("SELECT 1 FROM lessons WHERE id = $1::uuid FOR UPDATE NOWAIT", lesson["id"])
    done = await completing
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"


def user_registered(person: Person, timezone: str) -> Envelope:
    payload = UserRegistered(
        user_id=uuid.UUID(person.id), role=person.role, full_name="Someone", timezone=timezone, language="ru"
    )
    return Envelope.wrap(payload, producer="user-service", correlation_id="lesson-tests", causation_id=None)


async def test_day_and_week_views_are_in_each_users_time_zone(
    client: httpx.AsyncClient, people: People, rabbit_url: str
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    parent = people.parent_of(student)
    registered = user_registered(student, "Asia/Vladivostok")
    await publish(rabbit_url, registered, registered)  # a duplicate delivery changes nothing more
    lesson = await schedule(client, tutor, student, starts_at="2026-03-03T15:00:00+00:00")  # Tue 18:00 Moscow

    async def students_zone() -> bool:
        view = await client.get("/api/v1/lessons/schedule", params={"view": "day"}, headers=student.headers)
        return view.json()["timezone"] == "Asia/Vladivostok"

    await eventually(students_zone, what="user.registered applied")

    def day_of(view: dict) -> dict[str, list[str]]:
        return {d["date"]: [x["id"] for x in d["lessons"]] for d in view["days"] if d["lessons"]}

    tutor_week = (await client.get("/api/v1/lessons/schedule", headers=tutor.headers)).json()
    assert tutor_week["timezone"] == "Europe/Moscow" and len(tutor_week["days"]) == 7
    assert tutor_week["days"][0]["date"] == "2026-03-02"  # the week starts on Monday
    assert day_of(tutor_week) == {"2026-03-03": [lesson["id"]]}
    student_day = await client.get(
        "/api/v1/lessons/schedule", params={"view": "day", "date": "2026-03-04"}, headers=student.headers
    )
    assert day_of(student_day.json()) == {"2026-03-04": [lesson["id"]]}  # 01:00 on Wednesday in Vladivostok
    assert student_day.json()["days"][0]["lessons"][0]["local_starts_at"].startswith("2026-03-04T01:00:00+10:00")
    # the parent (who has named the child once) sees it in the default zone
    await client.get("/api/v1/lessons", params={"student_id": student.id}, headers=parent.headers)
    parent_week = (await client.get("/api/v1/lessons/schedule", headers=parent.headers)).json()
    assert day_of(parent_week) == {"2026-03-03": [lesson["id"]]}

    # a later user.updated moves the view; an older one arriving late does not
    newer = Envelope.wrap(
        UserUpdated(user_id=uuid.UUID(student.id), full_name="S", timezone="Europe/London", language="en"),
        producer="user-service",
        correlation_id="lesson-tests",
        causation_id=None,
    )
    older = Envelope.wrap(
        UserUpdated(user_id=uuid.UUID(student.id), full_name="S", timezone="Asia/Tokyo", language="en"),
        producer="user-service",
        correlation_id="lesson-tests",
        causation_id=None,
        occurred_at=registered.occurred_at,
    )
    await publish(rabbit_url, newer, older)

    async def london() -> bool:
        view = await client.get("/api/v1/lessons/schedule", params={"view": "day"}, headers=student.headers)
        return view.json()["timezone"] == "Europe/London"

    await eventually(london, what="user.updated applied, the older event ignored")
    assert NOW.weekday() == 0


async def test_a_calendar_feed_is_secret_and_revocable(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student, topic="Logarithms", place="Room 5")
    gone = await schedule(client, tutor, student, starts_at=at(days=2))
    await client.post(f"/api/v1/lessons/{gone['id']}/cancel", json={}, headers=tutor.headers)

    created = await client.post("/api/v1/lessons/calendar-feed", headers=student.headers)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["url"] == f"https://api.example.test/api/v1/lessons/calendar.ics?token={token}"

    feed = await client.get("/api/v1/lessons/calendar.ics", params={"token": token})  # no bearer token
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(feed.content)
    events = {str(e["uid"]): e for e in calendar.walk("VEVENT")}
    ours = events[f"{lesson['id']}@repitbot"]
    assert str(ours["summary"]) == "Maths: Logarithms" and str(ours["location"]) == "Room 5"
    assert ours.decoded("dtstart") == datetime.fromisoformat(lesson["starts_at"])
    assert str(events[f"{gone['id']}@repitbot"]["status"]) == "CANCELLED"

    replaced = await client.post("/api/v1/lessons/calendar-feed", headers=student.headers)
    assert_error(await client.get("/api/v1/lessons/calendar.ics", params={"token": token}), 404)
    new_token = replaced.json()["token"]
    assert (await client.get("/api/v1/lessons/calendar.ics", params={"token": new_token})).status_code == 200
    assert (await client.delete("/api/v1/lessons/calendar-feed", headers=student.headers)).status_code == 204
    assert_error(await client.get("/api/v1/lessons/calendar.ics", params={"token": new_token}), 404)
    assert (await client.post("/api/v1/lessons/calendar-feed")).status_code == 401
