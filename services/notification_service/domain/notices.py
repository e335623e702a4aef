"""Who is told what when something happens: one function per event, each a ``notify`` per recipient with a
stable template, the params to render it and a ``dedup_key`` derived from the source (docs/decisions/0016).

Recipients: the student (``student_id`` of the event) and their parents (``student.linked``, relation parent);
the tutor for a hand-in and for a cancellation someone else made. ``now`` is the service's clock, which
quiet hours are judged by.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.domain.delivery import notify, parents_of
from services.notification_service.models import HomeworkFact, Recipient
from shared.events.catalogue import (
    BalanceLow,
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkSubmitted,
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    LessonScheduled,
    PaymentReceived,
    StudentAchievementUnlocked,
    StudentLevelUp,
)

AnyLesson = LessonScheduled | LessonRescheduled | LessonCancelled | LessonCompleted | LessonMissed


async def _family(session: AsyncSession, student_id: uuid.UUID) -> list[uuid.UUID]:
    return [student_id, *await parents_of(session, student_id)]


def _lesson(lesson: AnyLesson) -> dict[str, Any]:
    return {
        "lesson_id": lesson.lesson_id,
        "student_id": lesson.student_id,
        "tutor_id": lesson.tutor_id,
        "subject": lesson.subject,
        "topic": lesson.topic,
        "starts_at": lesson.starts_at,
        "ends_at": lesson.ends_at,
    }


async def _student_name(session: AsyncSession, student_id: uuid.UUID) -> str | None:
    return await session.scalar(select(Recipient.full_name).where(Recipient.user_id == student_id))


# --- schedule changes: the student and their parents ----------------------------------------------


async def lesson_scheduled(session: AsyncSession, lesson: LessonScheduled, *, now: datetime, at: datetime) -> None:
    """A new lesson; a recurring series is told once (its first lesson to arrive), a lesson recorded after it
    was held not at all."""
    if lesson.starts_at <= at:
        return
    for user_id in await _family(session, lesson.student_id):
        source = f"series:{lesson.series_id}" if lesson.series_id else str(lesson.lesson_id)
        await notify(
            session,
            user_id,
            kind="schedule_change",
            template="lesson_scheduled",
            params={**_lesson(lesson), "series_id": lesson.series_id, "for_parent": user_id != lesson.student_id},
            dedup_key=f"lesson_scheduled:{source}:{user_id}",
            now=now,
            deadline=lesson.starts_at,
            late="send",
        )


async def lesson_rescheduled(session: AsyncSession, lesson: LessonRescheduled, *, now: datetime) -> None:
    """A lesson moved (an edit that keeps its time, e.g. the price, tells nobody)."""
    if (lesson.starts_at, lesson.ends_at) == (lesson.previous_starts_at, lesson.previous_ends_at):
        return
    for user_id in await _family(session, lesson.student_id):
        await notify(
            session,
            user_id,
            kind="schedule_change",
            template="lesson_rescheduled",
            params={
                **_lesson(lesson),
                "previous_starts_at": lesson.previous_starts_at,
                "for_parent": user_id != lesson.student_id,
            },
            dedup_key=f"lesson_rescheduled:{lesson.lesson_id}:{lesson.previous_starts_at.isoformat()}"
            f":{lesson.starts_at.isoformat()}:{user_id}",
            now=now,
            deadline=min(lesson.starts_at, lesson.previous_starts_at),
            late="send",
        )


async def lesson_cancelled(session: AsyncSession, lesson: LessonCancelled, *, now: datetime) -> None:
    """The student, their parents and the tutor, except whoever cancelled; once per lesson (the event sent
    again when the tutor excuses the cancellation tells nobody again). The only notice of a cancellation:
    the bot's RSVP button cancels through the API like any other client and leaves the telling to this."""
    recipients = [*await _family(session, lesson.student_id), lesson.tutor_id]
    student_name = await _student_name(session, lesson.student_id)
    for user_id in recipients:
        if user_id == lesson.cancelled_by:
            continue
        await notify(
            session,
            user_id,
            kind="schedule_change",
            template="lesson_cancelled",
            params={
                **_lesson(lesson),
                "student_name": student_name,
                "cancelled_by_role": lesson.cancelled_by_role,
                "reason": lesson.reason,
                "chargeable": lesson.chargeable,
                "for_parent": user_id not in (lesson.student_id, lesson.tutor_id),
                "for_tutor": user_id == lesson.tutor_id,
            },
            dedup_key=f"lesson_cancelled:{lesson.lesson_id}:{user_id}",
            now=now,
            deadline=lesson.starts_at,
            late="send",
        )


# --- after each lesson: the parents ---------------------------------------------------------------


async def lesson_report(session: AsyncSession, lesson: LessonCompleted | LessonMissed, *, now: datetime) -> None:
    """Attendance, grade, mastery and the homework set for the lesson (as far as it is known now) and how many
    assignments are still open."""
    parents = await parents_of(session, lesson.student_id)
    if not parents:
        return
    homework = [
        {"homework_id": h.homework_id, "title": h.title, "due_at": h.due_at}
        for h in await session.scalars(
            select(HomeworkFact).where(HomeworkFact.lesson_id == lesson.lesson_id).order_by(HomeworkFact.due_at)
        )
    ]
    open_homework = await session.scalar(
        select(func.count()).where(
            HomeworkFact.student_id == lesson.student_id,
            HomeworkFact.submitted_at.is_(None),
            HomeworkFact.graded_at.is_(None),
        )
    )
    completed = isinstance(lesson, LessonCompleted)
    params = {
        **_lesson(lesson),
        "student_name": await _student_name(session, lesson.student_id),
        "attendance": lesson.attendance,
        "grade": lesson.grade if completed else None,
        "mastery": lesson.mastery if completed else None,
        "mastery_comment": lesson.mastery_comment if completed else None,
        "homework": homework,
        "open_homework": open_homework,
    }
    for parent in parents:
        await notify(
            session,
            parent,
            kind="lesson_report",
            template="lesson_report",
            params=params,
            dedup_key=f"lesson_report:{lesson.lesson_id}:{parent}",
            now=now,
        )


# --- homework -----------------------------------------------------------------------------------------


def _homework(homework: HomeworkAssigned | HomeworkSubmitted | HomeworkGraded) -> dict[str, Any]:
    return {
        "homework_id": homework.homework_id,
        "student_id": homework.student_id,
        "tutor_id": homework.tutor_id,
        "title": homework.title,
        "due_at": homework.due_at,
        "lesson_id": homework.lesson_id,
    }


async def homework_assigned(session: AsyncSession, homework: HomeworkAssigned, *, now: datetime) -> None:
    await notify(
        session,
        homework.student_id,
        kind="homework_assigned",
        template="homework_assigned",
        params=_homework(homework),
        dedup_key=f"homework_assigned:{homework.homework_id}:{homework.student_id}",
        now=now,
    )


async def homework_submitted(session: AsyncSession, homework: HomeworkSubmitted, *, now: datetime) -> None:
    """The tutor, once per hand-in (a resubmission is news too)."""
    await notify(
        session,
        homework.tutor_id,
        kind="homework_submitted",
        template="homework_submitted",
        params={
            **_homework(homework),
            "student_name": await _student_name(session, homework.student_id),
            "submission_id": homework.submission_id,
            "submitted_at": homework.submitted_at,
            "late": homework.late,
        },
        dedup_key=f"homework_submitted:{homework.submission_id}:{homework.tutor_id}",
        now=now,
    )


async def homework_graded(session: AsyncSession, homework: HomeworkGraded, *, now: datetime) -> None:
    for user_id in await _family(session, homework.student_id):
        await notify(
            session,
            user_id,
            kind="homework_graded",
            template="homework_graded",
            params={**_homework(homework), "grade": homework.grade, "for_parent": user_id != homework.student_id},
            dedup_key=f"homework_graded:{homework.homework_id}:{user_id}",
            now=now,
        )


# --- money ---------------------------------------------------------------------------------------------


async def payment_received(session: AsyncSession, payment: PaymentReceived, *, now: datetime) -> None:
    for user_id in await _family(session, payment.student_id):
        await notify(
            session,
            user_id,
            kind="payment_received",
            template="payment_received",
            params={
                "payment_id": payment.payment_id,
                "student_id": payment.student_id,
                "tutor_id": payment.tutor_id,
                "amount": payment.amount,
                "currency": payment.currency,
                "method": payment.method,
                "balance_after": payment.balance_after,
                "lessons_covered": payment.lessons_covered,
                "for_parent": user_id != payment.student_id,
            },
            dedup_key=f"payment_received:{payment.payment_id}:{user_id}",
            now=now,
        )


async def balance_low(session: AsyncSession, balance: BalanceLow, *, event_id: uuid.UUID, now: datetime) -> None:
    """The parents, who pay; the student only when nobody else would hear of it. Each crossing is its own
    event (payment-service sends one per crossing), so the key is the event's id."""
    recipients = await parents_of(session, balance.student_id) or [balance.student_id]
    for user_id in recipients:
        await notify(
            session,
            user_id,
            kind="balance_low",
            template="balance_low",
            params={
                "student_id": balance.student_id,
                "tutor_id": balance.tutor_id,
                "student_name": await _student_name(session, balance.student_id),
                "balance": balance.balance,
                "currency": balance.currency,
                "lessons_covered": balance.lessons_covered,
                "covered_until": balance.covered_until,
                "for_parent": user_id != balance.student_id,
            },
            dedup_key=f"balance_low:{event_id}:{user_id}",
            now=now,
        )


# --- the game layer: level-ups to the student, achievements also to the parents -------------------------


async def level_up(session: AsyncSession, event: StudentLevelUp, *, now: datetime) -> None:
    await notify(
        session,
        event.student_id,
        kind="level_up",
        template="level_up",
        params={"student_id": event.student_id, "level": event.level, "total_xp": event.total_xp},
        dedup_key=f"level_up:{event.student_id}:{event.level}",
        now=now,
    )


async def achievement_unlocked(session: AsyncSession, event: StudentAchievementUnlocked, *, now: datetime) -> None:
    for user_id in await _family(session, event.student_id):
        await notify(
            session,
            user_id,
            kind="achievement_unlocked",
            template="achievement_unlocked",
            params={
                "student_id": event.student_id,
                "student_name": await _student_name(session, event.student_id),
                "code": event.code,
                "rarity": event.rarity,
                "for_parent": user_id != event.student_id,
            },
            dedup_key=f"achievement_unlocked:{event.student_id}:{event.code}:{user_id}",
            now=now,
        )
