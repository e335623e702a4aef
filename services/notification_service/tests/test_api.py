"""GET /api/v1/notifications/reminders?lesson_id=: the lesson's reminders for its tutor, student and
parents; another tutor gets 404."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx

from services.notification_service.tests.conftest import NOW, Events, lesson, scheduled
from shared.events.catalogue import LessonCancelled


async def test_the_tutor_reads_a_lessons_reminders_and_another_tutor_cannot(
    client: httpx.AsyncClient, events: Events
) -> None:
    family = await events.family()
    starts = NOW + timedelta(days=80)
    planned = scheduled(family, starts_at=starts)
    await events.send(planned)
    params = {"lesson_id": str(planned.lesson_id)}

    response = await client.get("/api/v1/notifications/reminders", params=params, headers=family.tutor.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert sorted((x["user_id"], x["offset_minutes"], x["status"]) for x in items) == sorted(
        (str(u), m, "pending") for u in (family.student.id, family.parent.id) for m in (1440, 60)
    )
    due = {datetime.fromisoformat(x["due_at"]) for x in items if x["offset_minutes"] == 60}
    assert due == {starts - timedelta(hours=1)}

    for who in (family.student, family.parent):
        seen = await client.get("/api/v1/notifications/reminders", params=params, headers=who.headers)
        assert seen.status_code == 200 and len(seen.json()["items"]) == 4

    stranger = events.person("tutor")
    refused = await client.get("/api/v1/notifications/reminders", params=params, headers=stranger.headers)
    assert refused.status_code == 404, refused.text

    await events.send(
        LessonCancelled(
            **lesson(family, starts_at=starts, lesson_id=planned.lesson_id),
            cancelled_by=family.tutor.id,
            cancelled_by_role="tutor",
        )
    )
    after = await client.get("/api/v1/notifications/reminders", params=params, headers=family.tutor.headers)
    assert {x["status"] for x in after.json()["items"]} == {"withdrawn"}

    unknown = await client.get(
        "/api/v1/notifications/reminders", params={"lesson_id": str(uuid.uuid4())}, headers=family.tutor.headers
    )
    assert unknown.status_code == 200 and unknown.json()["items"] == []
