"""Streaks through the consumer: study days in the student's time zone from occurred_at, a late event
counted for its own day, a tutor-cancelled day not breaking it, student.streak_updated once per day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from services.student_service.tests.conftest import Events, profile_of
from services.student_service.tests.test_awards import completed, linked
from shared.events.catalogue import LessonCancelled, MaterialViewed
from shared.testing.service import People

MOSCOW_EVENING = datetime(2026, 2, 26, 20, 30, tzinfo=UTC)  # 23:30 in Moscow: still Feb 26 there


async def test_days_in_the_students_zone_late_events_and_tutor_cancellations(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    day = timedelta(days=1)
    # Moscow days Feb 26 (23:30 there), Feb 27, then Mar 1: Feb 28 missed
    await events.send(events.wrap(completed(tutor, student), occurred_at=MOSCOW_EVENING))
    await events.send(events.wrap(completed(tutor, student), occurred_at=MOSCOW_EVENING + day))
    await events.send(events.wrap(completed(tutor, student), occurred_at=MOSCOW_EVENING + 3 * day))
    profile = await profile_of(client, student)
    assert (profile["current_streak"], profile["longest_streak"]) == (1, 2)

    # the tutor cancelled Feb 28's lesson: that day does not break the streak
    cancelled = LessonCancelled(
        **completed(tutor, student).model_dump(include={"lesson_id", "tutor_id", "student_id", "subject"}),
        starts_at=datetime(2026, 2, 28, 12, 0, tzinfo=UTC),
        ends_at=datetime(2026, 2, 28, 13, 0, tzinfo=UTC),
        cancelled_by=uuid.UUID(tutor.id),
        cancelled_by_role="tutor",
    )
    await events.send(events.wrap(cancelled))
    # a material viewed on Mar 1, arriving late and twice: the day is counted already
    viewed = MaterialViewed(
        material_id=uuid.uuid4(), owner_id=uuid.UUID(tutor.id), viewer_id=uuid.UUID(student.id), viewer_role="student"
    )
    late = events.wrap(viewed, occurred_at=MOSCOW_EVENING + 3 * day)
    await events.send(late, late)
    profile = await profile_of(client, student)
    assert (profile["current_streak"], profile["longest_streak"]) == (3, 3), profile

    updates = await db.fetch(
        "SELECT envelope->'payload' AS p FROM outbox_events WHERE event_type = 'student.streak_updated'"
        " AND envelope->'payload'->>'student_id' = $1",
        student.id,
    )
    assert len(updates) == 3  # one per new study day; the second event of Mar 1 adds none
