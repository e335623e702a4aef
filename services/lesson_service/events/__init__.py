"""What lesson-service publishes (built from a lesson, added to the outbox in the change's transaction)
and consumes: ``user.registered`` / ``user.updated`` keep the local copy of each user's time zone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.lesson_service.domain import plans
from services.lesson_service.models import Lesson, UserProfile
from shared.events import EventHandler
from shared.events.catalogue import (
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    LessonScheduled,
    UserRegistered,
    UserUpdated,
    payload_as,
)
from shared.events.envelope import Envelope
from shared.events.outbox import add_event


def _lesson_fields(lesson: Lesson) -> dict[str, Any]:
    return {
        "lesson_id": lesson.id,
        "tutor_id": lesson.tutor_id,
        "student_id": lesson.student_id,
        "starts_at": lesson.starts_at,
        "ends_at": lesson.ends_at,
        "subject": lesson.subject,
        "topic": lesson.topic,
        "lesson_type": lesson.lesson_type,
        "series_id": lesson.series_id,
        "price": lesson.price,
        "currency": lesson.currency,
        "chargeable": lesson.chargeable,
    }


def lesson_scheduled(lesson: Lesson) -> LessonScheduled:
    return LessonScheduled(**_lesson_fields(lesson))


def lesson_rescheduled(
    lesson: Lesson, *, previous_starts_at: datetime, previous_ends_at: datetime
) -> LessonRescheduled:
    return LessonRescheduled(
        **_lesson_fields(lesson), previous_starts_at=previous_starts_at, previous_ends_at=previous_ends_at
    )


def lesson_cancelled(lesson: Lesson) -> LessonCancelled:
    assert lesson.cancelled_by is not None and lesson.cancelled_by_role is not None
    return LessonCancelled(
        **_lesson_fields(lesson),
        cancelled_by=lesson.cancelled_by,
        cancelled_by_role=lesson.cancelled_by_role,
        reason=lesson.cancel_reason,
        excused_by=lesson.excused_by,
    )


def lesson_completed(lesson: Lesson) -> LessonCompleted:
    return LessonCompleted(
        **_lesson_fields(lesson),
        attendance=lesson.attendance or "present",
        grade=lesson.grade,
        mastery=lesson.mastery,
        mastery_comment=lesson.mastery_comment,
        skills=list(lesson.skills or []),
        notes=lesson.notes,
    )


def lesson_missed(lesson: Lesson) -> LessonMissed:
    return LessonMissed(**_lesson_fields(lesson), attendance="absent", reason=lesson.missed_reason)


async def announce_reflowed(session: AsyncSession, *already: uuid.UUID) -> None:
    """``lesson.rescheduled`` (same times) for the other scheduled lessons whose plan topic moved in this
    transaction, so consumers never keep a stale topic; ``already`` were announced by the request itself."""
    moved = plans.reflowed(session)
    for lesson in moved.values():
        if lesson.id not in already and lesson.status == "scheduled":
            await add_event(
                session,
                lesson_rescheduled(lesson, previous_starts_at=lesson.starts_at, previous_ends_at=lesson.ends_at),
            )
    moved.clear()


# --- consumed ----------------------------------------------------------------------------------


async def _remember_profile(
    session: AsyncSession, user_id: uuid.UUID, timezone: str, full_name: str, observed_at: datetime
) -> None:
    statement = insert(UserProfile).values(
        user_id=user_id, timezone=timezone, full_name=full_name, updated_at=observed_at
    )
    statement = statement.on_conflict_do_update(
        index_elements=[UserProfile.user_id],
        set_={"timezone": timezone, "full_name": full_name, "updated_at": observed_at},
        where=UserProfile.updated_at < statement.excluded.updated_at,  # a late, older event never wins
    )
    await session.execute(statement)


async def on_user_registered(session: AsyncSession, envelope: Envelope) -> None:
    user = payload_as(envelope, UserRegistered)
    await _remember_profile(session, user.user_id, user.timezone, user.full_name, envelope.occurred_at)


async def on_user_updated(session: AsyncSession, envelope: Envelope) -> None:
    user = payload_as(envelope, UserUpdated)
    await _remember_profile(session, user.user_id, user.timezone, user.full_name, envelope.occurred_at)


SUBSCRIPTIONS: dict[str, EventHandler] = {
    UserRegistered.event_type: on_user_registered,
    UserUpdated.event_type: on_user_updated,
}
