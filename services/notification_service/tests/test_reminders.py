"""Lesson reminders: armed on lesson.scheduled for the student and their parents at T−24 h and T−1 h
(or the user's own offsets), withdrawn on lesson.cancelled, moved on lesson.rescheduled; the scheduler's
"what is due at ``now``" requests each once, across passes, restarts and two instances at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from types import SimpleNamespace

import asyncpg
import httpx
from fastapi import FastAPI

from services.notification_service.domain.reminders import emit_due
from services.notification_service.domain.scheduler import start_scheduler, stop_scheduler
from services.notification_service.settings import NotificationServiceSettings
from services.notification_service.tests.conftest import NOW, Events, lesson, prefer, requested, scheduled
from shared.clock import FakeClock
from shared.db import Database
from shared.events.catalogue import LessonCancelled, LessonRescheduled
from shared.testing.events import eventually
from shared.testing.service import Person


async def reminders_of(db: asyncpg.Pool, lesson_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT user_id, offset_minutes, status, due_at FROM reminders WHERE lesson_id = $1"
        " ORDER BY user_id, offset_minutes",
        lesson_id,
    )


async def test_reminders_go_to_the_student_and_the_parent_at_24_h_and_1_h(
    app: FastAPI, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    starts = NOW + timedelta(days=10, hours=8)
    planned = scheduled(family, starts_at=starts)
    # a duplicated delivery arms nothing twice
    [envelope] = await events.send(planned)
    await events.send(planned)  # a new event for the same lesson: the same reminders, not more
    assert len(await reminders_of(db, planned.lesson_id)) == 4

    lesson_id = str(planned.lesson_id)
    await emit_due(app.state.db, starts - timedelta(hours=24, minutes=1))
    assert await requested(db, template="lesson_reminder", params={"lesson_id": lesson_id}) == []

    await emit_due(app.state.db, starts - timedelta(hours=24))
    day_before = await requested(
        db, template="lesson_reminder", params={"lesson_id": lesson_id, "minutes_before": 1440}
    )
    assert {(x["user_id"], x["chat_id"]) for x in day_before} == {
        (str(family.student.id), 444),
        (str(family.parent.id), 555),
    }
    to_parent = next(x for x in day_before if x["user_id"] == str(family.parent.id))
    assert to_parent["template"] == "lesson_reminder"
    assert to_parent["params"]["language"] == "en" and to_parent["params"]["for_parent"] is True
    assert to_parent["params"]["starts_at_local"].endswith("+09:00")  # the parent's Tokyo time
    assert to_parent["dedup_key"].startswith(f"lesson_reminder:{lesson_id}:{family.parent.id}:1440:")

    await emit_due(app.state.db, starts - timedelta(hours=2))  # nothing new between the two
    assert len(await requested(db, template="lesson_reminder", params={"lesson_id": lesson_id})) == 2
    await emit_due(app.state.db, starts - timedelta(minutes=59))
    hour_before = await requested(db, template="lesson_reminder", params={"lesson_id": lesson_id, "minutes_before": 60})
    assert {x["user_id"] for x in hour_before} == {str(family.student.id), str(family.parent.id)}
    await emit_due(app.state.db, starts + timedelta(hours=1))
    assert len(await requested(db, template="lesson_reminder", params={"lesson_id": lesson_id})) == 4  # each once
    assert {r["status"] for r in await reminders_of(db, planned.lesson_id)} == {"sent"}
    assert envelope.event_id  # the envelope was handled (send waits for the inbox)


async def test_a_cancelled_lesson_is_never_reminded(app: FastAPI, events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    starts = NOW + timedelta(days=20)
    planned = scheduled(family, starts_at=starts)
    await events.send(planned)
    fields = lesson(family, starts_at=starts, lesson_id=planned.lesson_id)
    await events.send(LessonCancelled(**fields, cancelled_by=family.student.id, cancelled_by_role="student"))
    await emit_due(app.state.db, starts - timedelta(minutes=1))
    assert await requested(db, template="lesson_reminder", params={"lesson_id": str(planned.lesson_id)}) == []
    assert {r["status"] for r in await reminders_of(db, planned.lesson_id)} == {"withdrawn"}


async def test_a_rescheduled_lesson_is_reminded_at_its_new_time(app: FastAPI, events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    old = NOW + timedelta(days=30)
    new = old + timedelta(days=2)
    planned = scheduled(family, starts_at=old)
    await events.send(planned)
    await events.send(
        LessonRescheduled(
            **lesson(family, starts_at=new, lesson_id=planned.lesson_id),
            previous_starts_at=old,
            previous_ends_at=old + timedelta(hours=1),
        )
    )
    lesson_id = str(planned.lesson_id)
    await emit_due(app.state.db, old - timedelta(minutes=30))  # past both of the old time's reminders
    assert await requested(db, template="lesson_reminder", params={"lesson_id": lesson_id}) == []
    await emit_due(app.state.db, new - timedelta(hours=24))
    moved = await requested(db, template="lesson_reminder", params={"lesson_id": lesson_id})
    assert len(moved) == 2 and {x["params"]["starts_at"] for x in moved} == {new.isoformat()}


async def test_a_users_own_offsets_and_a_reminder_after_the_lesson_began_is_dropped(
    app: FastAPI, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    await db.execute(
        "UPDATE recipients SET reminder_offsets_minutes = '[180]'::jsonb WHERE user_id = $1", family.student.id
    )
    starts = NOW + timedelta(days=40)
    planned = scheduled(family, starts_at=starts)
    await events.send(planned)
    mine = [
        r["offset_minutes"] for r in await reminders_of(db, planned.lesson_id) if str(r["user_id"]) == family.student.id
    ]
    assert mine == [180]
    # the scheduler was down until after the lesson began: nothing late is sent
    await emit_due(app.state.db, starts + timedelta(minutes=5))
    assert await requested(db, template="lesson_reminder", params={"lesson_id": str(planned.lesson_id)}) == []
    assert {r["status"] for r in await reminders_of(db, planned.lesson_id)} == {"dropped"}


async def test_new_offsets_apply_to_lessons_already_planned_and_a_sent_reminder_stays_sent(
    app: FastAPI, events: Events, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    family = await events.family()
    sooner, later = (
        scheduled(family, starts_at=NOW + timedelta(days=60)),
        scheduled(family, starts_at=NOW + timedelta(days=61)),
    )
    await events.send(sooner, later)
    await emit_due(app.state.db, sooner.starts_at - timedelta(hours=24))  # the sooner lesson's day-before ones

    await prefer(client, family.student, reminder_offsets_minutes=[180])

    def of(rows: list[asyncpg.Record], who: Person) -> dict[int, str]:
        return {r["offset_minutes"]: r["status"] for r in rows if str(r["user_id"]) == who.id}

    sooner_rows, later_rows = await reminders_of(db, sooner.lesson_id), await reminders_of(db, later.lesson_id)
    assert of(sooner_rows, family.student) == {1440: "sent", 60: "withdrawn", 180: "pending"}
    assert of(later_rows, family.student) == {1440: "withdrawn", 60: "withdrawn", 180: "pending"}
    # the parent keeps theirs
    assert of(sooner_rows, family.parent) == {1440: "sent", 60: "pending"}
    assert of(later_rows, family.parent) == {1440: "pending", 60: "pending"}
    # and back to the defaults: the day-before one already sent is not sent again
    await prefer(client, family.student)
    assert of(await reminders_of(db, sooner.lesson_id), family.student) == {
        1440: "sent",
        60: "pending",
        180: "withdrawn",
    }
    await emit_due(app.state.db, sooner.starts_at - timedelta(minutes=30))
    sent_to_student = await requested(
        db, template="lesson_reminder", user_id=family.student.id, params={"lesson_id": str(sooner.lesson_id)}
    )
    assert sorted(x["params"]["minutes_before"] for x in sent_to_student) == [60, 1440]


async def test_two_schedulers_and_a_restart_send_each_reminder_exactly_once(
    app: FastAPI, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    starts = NOW + timedelta(days=50)
    lessons = [scheduled(family, starts_at=starts + timedelta(minutes=i)) for i in range(10)]
    await events.send(*lessons)
    settings: NotificationServiceSettings = app.state.settings

    def instance() -> Database:
        return Database(settings.database_url, service="notification-service", pool_size=2, max_overflow=0)

    instances = [instance(), instance()]
    try:
        when = starts - timedelta(hours=23)
        await asyncio.gather(*(emit_due(x, when, batch_size=3) for x in instances for _ in range(2)))
    finally:
        for x in instances:
            await x.dispose()
    # a restarted instance: the marks are in the database
    restarted = instance()
    try:
        await emit_due(restarted, starts - timedelta(hours=23))
        await emit_due(restarted, starts - timedelta(minutes=50))
    finally:
        await restarted.dispose()
    for planned in lessons:
        sent = await requested(db, template="lesson_reminder", params={"lesson_id": str(planned.lesson_id)})
        assert sorted((x["user_id"], x["params"]["minutes_before"]) for x in sent) == sorted(
            (str(u), m) for u in (family.student.id, family.parent.id) for m in (1440, 60)
        )


async def test_the_apps_background_loop_sends_on_its_interval(app: FastAPI, events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    starts = NOW + timedelta(days=60)
    planned = scheduled(family, starts_at=starts)
    await events.send(planned)
    settings: NotificationServiceSettings = app.state.settings
    instance = SimpleNamespace(
        state=SimpleNamespace(
            db=app.state.db,
            clock=FakeClock(starts - timedelta(hours=2)),
            settings=settings.model_copy(update={"reminder_interval_seconds": 0.05}),
        )
    )
    await start_scheduler(instance)  # type: ignore[arg-type]
    try:

        async def reminded() -> bool:
            return (
                len(await requested(db, template="lesson_reminder", params={"lesson_id": str(planned.lesson_id)})) == 2
            )

        await eventually(reminded, what="reminders from the loop")
        await asyncio.sleep(0.2)  # a few more passes: still once each
        assert await reminded()
    finally:
        await stop_scheduler(instance)  # type: ignore[arg-type]
    assert instance.state.scheduler_task.done()


async def test_a_lesson_booked_three_hours_ahead_gets_only_its_1_h_reminder(
    app: FastAPI, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    starts = NOW + timedelta(days=70)
    planned = scheduled(family, starts_at=starts)
    await events.send(planned, occurred_at=starts - timedelta(hours=3))
    assert {r["offset_minutes"] for r in await reminders_of(db, planned.lesson_id)} == {60}
