"""The weekly summary (Monday 09:00 in the parent's zone, the previous week) and the monthly report (the 1st at
09:00, the previous month) from the facts the service kept, each once per period and recipient, with two
schedulers at once; a quiet period sends nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.notification_service.domain.digests import emit_digests
from services.notification_service.settings import NotificationServiceSettings
from services.notification_service.tests.conftest import Events, Family, lesson, requested
from shared.db import Database
from shared.events.catalogue import (
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkSubmitted,
    LessonCompleted,
    LessonMissed,
    PaymentReceived,
)

MONDAY_9_TOKYO = datetime(2030, 7, 15, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo, the parent's zone
FIRST_9_TOKYO = datetime(2030, 8, 1, 0, 0, tzinfo=UTC)


def at(day: int, hour: int = 10, month: int = 7) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=UTC)


async def a_busy_july(events: Events, family: Family) -> dict[str, Any]:
    ids = {"tutor_id": uuid.UUID(family.tutor.id), "student_id": uuid.UUID(family.student.id)}
    in_week = lesson(family, starts_at=at(9), topic="fractions")
    missed = lesson(family, starts_at=at(11))
    earlier = lesson(family, starts_at=at(2))
    await events.send(
        LessonCompleted(**in_week, grade=5, mastery="mastered"),
        LessonMissed(**missed),
        LessonCompleted(**earlier, grade=3, mastery="learned"),
    )
    work = {**ids, "homework_id": uuid.uuid4(), "title": "Ex. 1", "due_at": at(20)}
    await events.send(HomeworkAssigned(**work), occurred_at=at(9, 11), producer="homework-service")
    await events.send(
        HomeworkSubmitted(**work, submission_id=uuid.uuid4(), submitted_at=at(11)), producer="homework-service"
    )
    await events.send(HomeworkGraded(**work, grade=4), occurred_at=at(12), producer="homework-service")
    payment = PaymentReceived(
        **ids, amount=500000, currency="RUB", balance_after=500000, payment_id=uuid.uuid4(), method="card"
    )
    await events.send(payment, occurred_at=at(10), producer="payment-service")
    return {"in_week": in_week, "missed": missed, "earlier": earlier}


async def test_the_weekly_summary_goes_to_the_parent_once_on_monday_morning(
    app: FastAPI, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    july = await a_busy_july(events, family)
    quiet = await events.family()  # nothing happened to this one
    mine = {"template": "weekly_summary", "params": {"student_id": family.student.id}}

    await emit_digests(app.state.db, MONDAY_9_TOKYO - timedelta(minutes=1))
    assert await requested(db, **mine) == []

    settings: NotificationServiceSettings = app.state.settings
    schedulers = [Database(settings.database_url or "", service="notification-service", pool_size=2) for _ in range(2)]
    try:
        await asyncio.gather(*(emit_digests(s, MONDAY_9_TOKYO) for s in schedulers for _ in range(2)))
    finally:
        for s in schedulers:
            await s.dispose()
    await emit_digests(app.state.db, MONDAY_9_TOKYO + timedelta(hours=3))

    [summary] = await requested(db, **mine)
    assert summary["user_id"] == family.parent.id and summary["chat_id"] == 555
    params = summary["params"]
    assert (params["period_start"], params["period_end"]) == ("2030-07-08", "2030-07-14")
    assert [x["lesson_id"] for x in params["lessons"]] == [
        str(july["in_week"]["lesson_id"]),
        str(july["missed"]["lesson_id"]),
    ]
    assert params["lessons"][0]["mastery"] == "mastered" and params["lessons"][0]["starts_at_local"].endswith("+09:00")
    assert (params["lessons_attended"], params["lessons_missed"]) == (1, 1)
    assert params["homework"] == {"assigned": 1, "submitted": 1, "graded": 1, "average_grade": 4.0, "open": 0}
    assert params["payments"] == [{"currency": "RUB", "amount": 500000, "count": 1}]
    assert summary["dedup_key"] == f"weekly_summary:{family.parent.id}:{family.student.id}:2030-07-08"

    assert await requested(db, template="weekly_summary", params={"student_id": quiet.student.id}) == []
    recorded = await db.fetchval(
        "SELECT count(*) FROM digests WHERE kind = 'weekly' AND student_id = $1 AND delivery_id IS NULL",
        uuid.UUID(quiet.student.id),
    )
    assert recorded == 1  # decided on once, nothing to say


async def test_the_monthly_report_goes_to_the_parent_or_without_one_the_student(
    app: FastAPI, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    july = await a_busy_july(events, family)
    alone = await events.family(with_parent=False)
    await events.send(LessonCompleted(**lesson(alone, starts_at=at(20)), grade=4))

    await emit_digests(app.state.db, FIRST_9_TOKYO)
    await emit_digests(app.state.db, FIRST_9_TOKYO + timedelta(hours=1))
    [report] = await requested(db, template="monthly_report", params={"student_id": family.student.id})
    assert report["user_id"] == family.parent.id
    assert (report["params"]["period_start"], report["params"]["period_end"]) == ("2030-07-01", "2030-07-31")
    assert [x["lesson_id"] for x in report["params"]["lessons"]] == [
        str(july[name]["lesson_id"]) for name in ("earlier", "in_week", "missed")
    ]
    assert report["params"]["average_lesson_grade"] == 4.0

    # the lone student is in Moscow: due at 09:00 there, six hours later
    assert await requested(db, template="monthly_report", params={"student_id": alone.student.id}) == []
    await emit_digests(app.state.db, FIRST_9_TOKYO + timedelta(hours=6))
    [own] = await requested(db, template="monthly_report", params={"student_id": alone.student.id})
    assert own["user_id"] == alone.student.id and own["params"]["for_parent"] is False

    # a scheduler that was down for more than a day skips the period rather than send it late
    late = await events.family(with_parent=False)
    await events.send(LessonCompleted(**lesson(late, starts_at=at(5, month=8))))
    await emit_digests(app.state.db, datetime(2030, 9, 2, 12, tzinfo=UTC))
    assert await requested(db, template="monthly_report", params={"student_id": late.student.id}) == []
