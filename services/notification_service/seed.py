"""notification-service's part of a seeded world (``shared/seeding.py``): every user as a recipient, the
reminders of the lessons to come (those already due as sent), the facts its digests read (lesson outcomes,
homework, top-ups), the digests already due at the world's now (as made, so none goes out again), and its
access links. Default preferences: the reminder offsets are the settings' default."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.domain.digests import PERIODS
from services.notification_service.models import Digest, HomeworkFact, LessonOutcome, PaymentFact, Recipient, Reminder
from services.notification_service.settings import NotificationServiceSettings
from shared.seeding import World, access_link_rows, copy_rows
from shared.tables import access_links

DUE_NOTICE_BEFORE = timedelta(hours=24)


def default_offsets() -> list[int]:
    field = NotificationServiceSettings.model_fields["default_reminder_offsets_minutes"]
    return sorted(field.default_factory(), reverse=True)  # type: ignore[misc]


def _reminders(world: World) -> Iterator[dict[str, Any]]:
    offsets = default_offsets()
    for lesson in world.lessons:
        if lesson.held:
            continue
        for user_id in (lesson.student_id, *world.parents_of.get(lesson.student_id, ())):
            for minutes in offsets:
                due_at = lesson.starts_at - timedelta(minutes=minutes)
                sent = due_at <= world.as_of
                yield {
                    "id": world.event_id("reminder", f"{lesson.id}:{user_id}:{minutes}"),
                    "lesson_id": lesson.id,
                    "tutor_id": lesson.tutor_id,
                    "student_id": lesson.student_id,
                    "user_id": user_id,
                    "offset_minutes": minutes,
                    "subject": lesson.subject,
                    "topic": lesson.topic,
                    "starts_at": lesson.starts_at,
                    "due_at": due_at,
                    "status": "sent" if sent else "pending",
                    "sent_at": due_at if sent else None,
                    "created_at": lesson.created_at,
                    "updated_at": due_at if sent else lesson.created_at,
                }


def _digests(world: World) -> Iterator[dict[str, Any]]:
    zone = {person.id: ZoneInfo(person.timezone) for person in world.people}
    pairs = [("weekly", parent, student) for student, parents in world.parents_of.items() for parent in parents]
    pairs += [("monthly", user, s.id) for s in world.students for user in world.parents_of.get(s.id, [s.id])]
    for kind, user_id, student_id in pairs:
        period = PERIODS[kind](world.as_of, zone[user_id])
        if period is not None:
            yield {
                "id": world.event_id("digest", f"{kind}:{user_id}:{student_id}:{period.start}"),
                "kind": kind,
                "user_id": user_id,
                "student_id": student_id,
                "period_start": period.start,
                "period_end": period.end,
                "delivery_id": None,
            }


def _homework(world: World) -> Iterator[dict[str, Any]]:
    for work in world.homework:
        notice_at = work.due_at - DUE_NOTICE_BEFORE
        notice_at = notice_at if notice_at > work.assigned_at else None
        yield {
            "homework_id": work.id,
            "tutor_id": work.tutor_id,
            "student_id": work.student_id,
            "title": work.title,
            "due_at": work.due_at,
            "lesson_id": work.lesson_id,
            "assigned_at": work.assigned_at,
            "submitted_at": work.submitted_at,
            "graded_at": work.graded_at,
            "grade": work.grade,
            "due_notice_at": notice_at,
            "due_notified_at": notice_at if notice_at is not None and notice_at <= world.as_of else None,
        }


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    recipients = (
        {
            "user_id": p.id,
            "role": p.role,
            "full_name": p.full_name,
            "timezone": p.timezone,
            "language": "ru",
            "updated_at": p.created_at,
        }
        for p in world.people
    )
    outcomes = (
        {
            "lesson_id": x.id,
            "tutor_id": x.tutor_id,
            "student_id": x.student_id,
            "subject": x.subject,
            "topic": x.topic,
            "starts_at": x.starts_at,
            "attendance": x.attendance,
            "grade": x.grade,
            "mastery": x.mastery,
        }
        for x in world.lessons
        if x.held
    )
    payments = (
        {
            "payment_id": row.id,
            "tutor_id": row.tutor_id,
            "student_id": row.student_id,
            "amount": row.amount,
            "currency": world.currency,
            "received_at": row.at,
        }
        for row in world.ledger
        if row.kind == "top_up"
    )
    return {
        "recipients": await copy_rows(session, Recipient.__table__, recipients),
        "reminders": await copy_rows(session, Reminder.__table__, _reminders(world)),
        "lesson_outcomes": await copy_rows(session, LessonOutcome.__table__, outcomes),
        "homework": await copy_rows(session, HomeworkFact.__table__, _homework(world)),
        "payments": await copy_rows(session, PaymentFact.__table__, payments),
        "digests": await copy_rows(session, Digest.__table__, _digests(world)),
        "access_links": await copy_rows(session, access_links, access_link_rows(world)),
    }
