"""Who is told what when something happens: each event implies notification.requested with a stable template,
the params to render it and a dedup_key from the source, so the same fact sent again tells nobody twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.notification_service.domain.homework_due import emit_homework_due
from services.notification_service.settings import NotificationServiceSettings
from services.notification_service.tests.conftest import NOW, Events, Family, lesson, requested, scheduled
from shared.db import Database
from shared.events.catalogue import (
    BalanceLow,
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkSubmitted,
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    PaymentReceived,
    StudentAchievementUnlocked,
    StudentLevelUp,
)


def ids(family: Family) -> dict[str, uuid.UUID]:
    return {"tutor_id": uuid.UUID(family.tutor.id), "student_id": uuid.UUID(family.student.id)}


def homework(family: Family, **fields: Any) -> dict[str, Any]:
    return {
        "homework_id": uuid.uuid4(),
        **ids(family),
        "title": "Fractions",
        "due_at": NOW + timedelta(days=7),
        **fields,
    }


async def test_schedule_changes_reach_the_student_and_parents(events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    starts = NOW + timedelta(days=110)
    planned = scheduled(family, starts_at=starts)
    await events.send(planned)
    await events.send(planned)  # the producer's repeat (a new event id): told once
    made = await requested(db, template="lesson_scheduled", params={"lesson_id": str(planned.lesson_id)})
    assert sorted(x["user_id"] for x in made) == sorted([family.student.id, family.parent.id])
    to_parent = next(x for x in made if x["user_id"] == family.parent.id)
    assert to_parent["params"]["for_parent"] is True and to_parent["params"]["starts_at_local"].endswith("+09:00")
    assert to_parent["dedup_key"] == f"lesson_scheduled:{planned.lesson_id}:{family.parent.id}"

    moved = starts + timedelta(days=1)
    fields = lesson(family, starts_at=moved, lesson_id=planned.lesson_id)
    await events.send(
        LessonRescheduled(**fields, previous_starts_at=starts, previous_ends_at=starts + timedelta(hours=1))
    )
    [*rescheduled] = await requested(db, template="lesson_rescheduled", params={"lesson_id": str(planned.lesson_id)})
    assert len(rescheduled) == 2
    assert {x["params"]["previous_starts_at"] for x in rescheduled} == {starts.isoformat()}
    # an edit that keeps the time (the price) tells nobody
    priced = lesson(family, starts_at=moved, lesson_id=planned.lesson_id, price=150000, currency="RUB")
    await events.send(
        LessonRescheduled(**priced, previous_starts_at=moved, previous_ends_at=moved + timedelta(hours=1))
    )
    assert len(await requested(db, template="lesson_rescheduled", params={"lesson_id": str(planned.lesson_id)})) == 2

    # the student cancels: their parent and the tutor are told, not the student
    cancel = LessonCancelled(
        **fields, cancelled_by=uuid.UUID(family.student.id), cancelled_by_role="student", reason="ill"
    )
    await events.send(cancel)
    await events.send(cancel.model_copy(update={"chargeable": False, "excused_by": uuid.UUID(family.tutor.id)}))
    cancelled = await requested(db, template="lesson_cancelled", params={"lesson_id": str(planned.lesson_id)})
    assert sorted(x["user_id"] for x in cancelled) == sorted([family.parent.id, family.tutor.id])
    assert {x["params"]["reason"] for x in cancelled} == {"ill"}
    to = {x["user_id"]: x["params"] for x in cancelled}
    # the tutor's notice names the student and says whether the lesson is charged (it is, as sent first)
    assert (to[family.tutor.id]["for_tutor"], to[family.tutor.id]["for_parent"]) == (True, False)
    assert (to[family.parent.id]["for_tutor"], to[family.parent.id]["for_parent"]) == (False, True)
    assert {p["chargeable"] for p in to.values()} == {cancel.chargeable}
    assert {p["student_name"] for p in to.values()} == {f"student {family.student.id[:6]}"}


async def test_a_series_is_announced_once_and_a_lesson_recorded_afterwards_not_at_all(
    events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family(with_parent=False)
    series = uuid.uuid4()
    lessons = [scheduled(family, starts_at=NOW + timedelta(days=120 + 7 * i), series_id=series) for i in range(4)]
    await events.send(*lessons)
    assert len(await requested(db, template="lesson_scheduled", user_id=family.student.id)) == 1
    held = scheduled(family, starts_at=NOW + timedelta(days=150))
    await events.send(held, occurred_at=NOW + timedelta(days=150, hours=2))
    assert await requested(db, template="lesson_scheduled", params={"lesson_id": str(held.lesson_id)}) == []


async def test_homework_assigned_submitted_and_graded(events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    work = homework(family)
    key = str(work["homework_id"])
    await events.send(HomeworkAssigned(**work), producer="homework-service")
    [assigned] = await requested(db, template="homework_assigned", params={"homework_id": key})
    assert assigned["user_id"] == family.student.id and assigned["params"]["title"] == "Fractions"

    submission = HomeworkSubmitted(**work, submission_id=uuid.uuid4(), submitted_at=NOW, late=True)
    await events.send(submission, producer="homework-service")
    await events.send(submission, producer="homework-service")  # repeated: once
    [handed_in] = await requested(db, template="homework_submitted", params={"homework_id": key})
    assert handed_in["user_id"] == family.tutor.id and handed_in["params"]["late"] is True
    assert handed_in["params"]["student_name"] == f"student {family.student.id[:6]}"

    await events.send(
        HomeworkGraded(**work, grade=5, submission_id=submission.submission_id), producer="homework-service"
    )
    graded = await requested(db, template="homework_graded", params={"homework_id": key})
    assert sorted(x["user_id"] for x in graded) == sorted([family.student.id, family.parent.id])
    assert {x["params"]["grade"] for x in graded} == {5}


async def test_after_each_lesson_the_parent_gets_a_report(events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    starts = NOW - timedelta(days=1)
    held = lesson(family, starts_at=starts)
    await events.send(
        HomeworkAssigned(**homework(family, lesson_id=held["lesson_id"], title="Ex. 4")), producer="homework-service"
    )
    await events.send(LessonCompleted(**held, attendance="late", grade=4, mastery="learned", mastery_comment="good"))
    [report] = await requested(db, template="lesson_report", params={"lesson_id": str(held["lesson_id"])})
    assert report["user_id"] == family.parent.id
    params = report["params"]
    assert (params["attendance"], params["grade"], params["mastery"]) == ("late", 4, "learned")
    assert [h["title"] for h in params["homework"]] == ["Ex. 4"] and params["open_homework"] == 1

    missed = lesson(family, starts_at=starts + timedelta(hours=3))
    await events.send(LessonMissed(**missed))
    [absent] = await requested(db, template="lesson_report", params={"lesson_id": str(missed["lesson_id"])})
    assert absent["user_id"] == family.parent.id and absent["params"]["attendance"] == "absent"
    # the student is not sent the report
    assert await requested(db, template="lesson_report", user_id=family.student.id) == []


async def test_money_payment_received_and_balance_low_with_its_runway(events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    paid = PaymentReceived(
        **ids(family),
        amount=400000,
        currency="RUB",
        balance_after=450000,
        payment_id=uuid.uuid4(),
        method="card",
        lessons_covered=3,
    )
    await events.send(paid, producer="payment-service")
    received = await requested(db, template="payment_received", params={"payment_id": str(paid.payment_id)})
    assert sorted(x["user_id"] for x in received) == sorted([family.student.id, family.parent.id])
    assert {x["params"]["amount"] for x in received} == {400000}

    until = NOW + timedelta(days=6)
    low = BalanceLow(**ids(family), balance=50000, currency="RUB", lessons_covered=1, covered_until=until)
    await events.send(low, producer="payment-service")
    [to_parent] = await requested(db, template="balance_low", params={"student_id": family.student.id})
    assert to_parent["user_id"] == family.parent.id
    assert (to_parent["params"]["lessons_covered"], to_parent["params"]["covered_until"]) == (1, until.isoformat())
    assert to_parent["params"]["covered_until_local"].endswith("+09:00")

    alone = await events.family(with_parent=False)  # nobody else to tell: the student
    await events.send(
        BalanceLow(**ids(alone), balance=-100, currency="RUB", lessons_covered=0), producer="payment-service"
    )
    [to_student] = await requested(db, template="balance_low", params={"student_id": alone.student.id})
    assert to_student["user_id"] == alone.student.id and to_student["params"]["covered_until"] is None


async def test_level_up_to_the_student_and_achievements_also_to_parents(events: Events, db: asyncpg.Pool) -> None:
    family = await events.family()
    student = uuid.UUID(family.student.id)
    await events.send(
        StudentLevelUp(student_id=student, previous_level=1, level=2, total_xp=150), producer="student-service"
    )
    [level] = await requested(db, template="level_up", params={"student_id": family.student.id})
    assert level["user_id"] == family.student.id and level["params"]["level"] == 2
    unlocked = StudentAchievementUnlocked(student_id=student, code="first_lesson", rarity="common")
    await events.send(unlocked, unlocked, producer="student-service")
    told = await requested(db, template="achievement_unlocked", params={"student_id": family.student.id})
    assert sorted(x["user_id"] for x in told) == sorted([family.student.id, family.parent.id])


async def test_homework_due_tomorrow_once_and_not_when_handed_in(
    app: FastAPI, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    due = NOW + timedelta(days=30)
    works = [homework(family, due_at=due + timedelta(minutes=i)) for i in range(6)]
    await events.send(*(HomeworkAssigned(**w) for w in works), producer="homework-service")
    handed_in = works[0]
    await events.send(
        HomeworkSubmitted(**handed_in, submission_id=uuid.uuid4(), submitted_at=NOW), producer="homework-service"
    )
    soon = homework(family, due_at=NOW + timedelta(hours=5))  # assigned less than a day ahead: no notice
    await events.send(HomeworkAssigned(**soon), occurred_at=NOW, producer="homework-service")

    def of(work: dict[str, Any]) -> dict[str, Any]:
        return {"template": "homework_due_tomorrow", "params": {"homework_id": str(work["homework_id"])}}

    await emit_homework_due(app.state.db, due - timedelta(hours=24, minutes=1))
    assert await requested(db, **of(works[1])) == []

    settings: NotificationServiceSettings = app.state.settings
    schedulers = [Database(settings.database_url or "", service="notification-service", pool_size=2) for _ in range(2)]
    try:
        moment = due - timedelta(hours=23)
        await asyncio.gather(*(emit_homework_due(s, moment, batch_size=2) for s in schedulers for _ in range(2)))
    finally:
        for s in schedulers:
            await s.dispose()
    await emit_homework_due(app.state.db, due)
    for work in works[1:]:
        [sent] = await requested(db, **of(work))
        assert sent["user_id"] == family.student.id and sent["params"]["due_at"] == work["due_at"].isoformat()
    assert await requested(db, **of(handed_in)) == []
    assert await requested(db, **of(soon)) == []
