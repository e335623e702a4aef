"""Preferences at work: a reminder inside quiet hours goes when they end if that is still before the lesson,
else it is dropped (with a reason and a log line); other notifications wait for the end of quiet hours; a
kind switched off is recorded as suppressed; the chosen language reaches the params."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.notification_service.domain.delivery import emit_deferred
from services.notification_service.domain.reminders import emit_due
from services.notification_service.tests.conftest import NOW, Events, log_of, prefer, requested, scheduled
from shared.events.catalogue import HomeworkAssigned

MSK = timedelta(hours=3)  # Europe/Moscow, the student's zone


def msk(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00") - MSK


async def test_a_reminder_in_quiet_hours_is_postponed_or_dropped(
    app: FastAPI, client: httpx.AsyncClient, events: Events, db: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    family = await events.family()
    await prefer(client, family.student, quiet_hours={"start": "22:00", "end": "08:00"})
    early = scheduled(family, starts_at=msk("2030-06-10", "08:30"))  # 1 h reminder at 07:30: quiet until 08:00
    dawn = scheduled(family, starts_at=msk("2030-06-11", "07:30"))  # 1 h reminder at 06:30: quiet ends too late
    await events.send(early, dawn)

    def mine(template_params: dict[str, object]) -> dict[str, object]:
        return {"template": "lesson_reminder", "user_id": family.student.id, "params": template_params}

    await emit_due(app.state.db, msk("2030-06-10", "07:30"))
    assert await requested(db, **mine({"lesson_id": str(early.lesson_id), "minutes_before": 60})) == []
    postponed = await db.fetchrow(
        "SELECT status, due_at, reason FROM reminders WHERE lesson_id = $1 AND user_id = $2 AND offset_minutes = 60",
        early.lesson_id,
        uuid.UUID(family.student.id),
    )
    assert postponed["status"] == "pending" and postponed["due_at"] == msk("2030-06-10", "08:00")
    # the parent (Tokyo, no quiet hours) was reminded on time
    assert await requested(
        db, user_id=family.parent.id, params={"lesson_id": str(early.lesson_id), "minutes_before": 60}
    )
    # preferences saved again (another language, the same offsets): the postponement stands
    await prefer(client, family.student, quiet_hours={"start": "22:00", "end": "08:00"}, language="en")
    again = await db.fetchrow(
        "SELECT status, due_at, reason FROM reminders WHERE lesson_id = $1 AND user_id = $2 AND offset_minutes = 60",
        early.lesson_id,
        uuid.UUID(family.student.id),
    )
    assert dict(again) == dict(postponed)

    await emit_due(app.state.db, msk("2030-06-10", "08:00"))
    [sent] = await requested(db, **mine({"lesson_id": str(early.lesson_id), "minutes_before": 60}))
    assert sent["params"]["starts_at_local"].startswith("2030-06-10T08:30")

    with caplog.at_level(logging.INFO):
        await emit_due(app.state.db, msk("2030-06-11", "06:30"))
    assert await requested(db, **mine({"lesson_id": str(dawn.lesson_id), "minutes_before": 60})) == []
    dropped = await db.fetchrow(
        "SELECT status, reason FROM reminders WHERE lesson_id = $1 AND user_id = $2 AND offset_minutes = 60",
        dawn.lesson_id,
        uuid.UUID(family.student.id),
    )
    assert dropped["status"] == "dropped" and "quiet hours" in dropped["reason"]
    [logged] = await log_of(db, family.student.id, status="dropped")
    assert logged["template"] == "lesson_reminder" and "quiet hours" in logged["reason"]
    assert any("reminder dropped" in r.getMessage() and "quiet hours" in r.getMessage() for r in caplog.records)


async def test_other_notifications_wait_for_the_end_of_quiet_hours(
    app: FastAPI, client: httpx.AsyncClient, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    # NOW is 12:00 in Moscow: inside 11:00–13:00
    await prefer(client, family.student, quiet_hours={"start": "11:00", "end": "13:00"}, language="en")
    homework = HomeworkAssigned(
        homework_id=uuid.uuid4(),
        tutor_id=uuid.UUID(family.tutor.id),
        student_id=uuid.UUID(family.student.id),
        title="Fractions, p. 12",
        due_at=NOW + timedelta(days=5),
    )
    await events.send(homework, producer="homework-service")
    match = {"template": "homework_assigned", "params": {"homework_id": str(homework.homework_id)}}
    assert await requested(db, **match) == []
    [deferred] = await log_of(db, family.student.id, template="homework_assigned")
    ends = datetime(2030, 3, 2, 10, 0, tzinfo=UTC)  # 13:00 in Moscow
    assert deferred["status"] == "deferred" and deferred["deliver_at"] == ends

    assert await emit_deferred(app.state.db, ends - timedelta(minutes=1)) == []
    assert await emit_deferred(app.state.db, ends) == [deferred["id"]]
    assert await emit_deferred(app.state.db, ends + timedelta(hours=1)) == []  # once
    [sent] = await requested(db, **match)
    assert sent["notification_id"] == str(deferred["id"]) and sent["chat_id"] == 444
    assert sent["params"]["language"] == "en"  # the preference overrides the account's ru
    assert sent["params"]["due_at_local"].endswith("+03:00")


async def test_a_kind_switched_off_is_suppressed_and_logged(
    app: FastAPI, client: httpx.AsyncClient, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    kinds = (await client.get("/api/v1/notifications/preferences", headers=family.student.headers)).json()["kinds"]
    off = {"lesson_reminder", "schedule_change"}
    await prefer(client, family.student, enabled_kinds=[k for k in kinds if k not in off])
    starts = NOW + timedelta(days=90)
    planned = scheduled(family, starts_at=starts)
    await events.send(planned)
    await emit_due(app.state.db, starts - timedelta(minutes=30))

    lesson_id = str(planned.lesson_id)
    assert await requested(db, user_id=family.student.id, params={"lesson_id": lesson_id}) == []
    log = await log_of(db, family.student.id)
    assert {(r["template"], r["status"]) for r in log} == {
        ("lesson_scheduled", "suppressed"),
        ("lesson_reminder", "suppressed"),
    }
    statuses = await db.fetch(
        "SELECT DISTINCT status FROM reminders WHERE lesson_id = $1 AND user_id = $2",
        planned.lesson_id,
        uuid.UUID(family.student.id),
    )
    assert [r["status"] for r in statuses] == ["suppressed"]
    # the parent's are untouched
    assert (
        len(await requested(db, user_id=family.parent.id, template="lesson_reminder", params={"lesson_id": lesson_id}))
        == 2
    )
