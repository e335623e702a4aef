"""The small facts about a student the service keeps from the events it consumes, for the lesson report, the
"due tomorrow" check and the digests: lesson outcomes, homework, top-ups (docs/decisions/0016: no calls to
other services when a digest is due). Upserts keyed by what they describe, so a repeat changes nothing and
a late event fills in what it knows."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.models import HomeworkFact, LessonOutcome, PaymentFact
from shared.events.catalogue import (
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkSubmitted,
    LessonCompleted,
    LessonMissed,
    PaymentReceived,
)

# "due tomorrow": this long before the deadline
DUE_NOTICE_BEFORE = timedelta(hours=24)


async def lesson_outcome(session: AsyncSession, lesson: LessonCompleted | LessonMissed) -> None:
    values = {
        "tutor_id": lesson.tutor_id,
        "student_id": lesson.student_id,
        "subject": lesson.subject,
        "topic": lesson.topic,
        "starts_at": lesson.starts_at,
        "attendance": lesson.attendance,
        "grade": getattr(lesson, "grade", None),
        "mastery": getattr(lesson, "mastery", None),
    }
    statement = insert(LessonOutcome).values(lesson_id=lesson.lesson_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=[LessonOutcome.lesson_id], set_=values))


async def homework_assigned(session: AsyncSession, homework: HomeworkAssigned, at: datetime) -> None:
    """Keep the assignment; its "due tomorrow" notice is armed unless the deadline is less than a day away."""
    notice_at = homework.due_at - DUE_NOTICE_BEFORE
    values = {
        "tutor_id": homework.tutor_id,
        "student_id": homework.student_id,
        "title": homework.title,
        "due_at": homework.due_at,
        "lesson_id": homework.lesson_id,
        "assigned_at": at,
        "due_notice_at": notice_at if notice_at > at else None,
    }
    statement = insert(HomeworkFact).values(homework_id=homework.homework_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=[HomeworkFact.homework_id], set_=values))


async def homework_submitted(session: AsyncSession, homework: HomeworkSubmitted) -> None:
    await _homework_progress(session, homework, submitted_at=homework.submitted_at)


async def homework_graded(session: AsyncSession, homework: HomeworkGraded, at: datetime) -> None:
    await _homework_progress(session, homework, graded_at=at, grade=homework.grade)


async def _homework_progress(
    session: AsyncSession, homework: HomeworkSubmitted | HomeworkGraded, **changes: object
) -> None:
    """A hand-in or a grade; one that arrives before its assignment creates the row (no notice armed)."""
    base = {
        "tutor_id": homework.tutor_id,
        "student_id": homework.student_id,
        "title": homework.title,
        "due_at": homework.due_at,
        "lesson_id": homework.lesson_id,
    }
    statement = insert(HomeworkFact).values(homework_id=homework.homework_id, **base, **changes)
    updates = {
        # the latest hand-in wins; a grade is final
        name: func.greatest(getattr(HomeworkFact, name), statement.excluded[name]) if name == "submitted_at" else value
        for name, value in changes.items()
    }
    await session.execute(statement.on_conflict_do_update(index_elements=[HomeworkFact.homework_id], set_=updates))


async def payment_received(session: AsyncSession, payment: PaymentReceived, at: datetime) -> None:
    statement = insert(PaymentFact).values(
        payment_id=payment.payment_id,
        tutor_id=payment.tutor_id,
        student_id=payment.student_id,
        amount=payment.amount,
        currency=payment.currency,
        received_at=at,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=[PaymentFact.payment_id]))
