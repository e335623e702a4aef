"""lesson-service's part of a seeded world (``shared/seeding.py``): every lesson, held or to come, the
profiles (time zones) it keeps from ``user.*`` events, and its access links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.lesson_service.events import lesson_completed, lesson_missed, lesson_scheduled
from services.lesson_service.models import Lesson, UserProfile
from shared import seeding
from shared.events.envelope import Envelope
from shared.seeding import World, access_link_rows, copy_rows
from shared.tables import access_links

PRODUCER = "lesson-service"


def _row(lesson: seeding.Lesson) -> dict[str, Any]:
    return {
        "id": lesson.id,
        "tutor_id": lesson.tutor_id,
        "student_id": lesson.student_id,
        "starts_at": lesson.starts_at,
        "ends_at": lesson.ends_at,
        "subject": lesson.subject,
        "topic": lesson.topic,
        "lesson_type": "regular",
        "status": lesson.status,
        "chargeable": True,
        "completed_at": lesson.ends_at if lesson.held else None,
        "attendance": lesson.attendance,
        "grade": lesson.grade,
        "mastery": lesson.mastery,
        "created_at": lesson.created_at,
        "updated_at": lesson.ends_at if lesson.held else lesson.created_at,
    }


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    profiles = (
        {"user_id": p.id, "timezone": p.timezone, "full_name": p.full_name, "updated_at": p.created_at}
        for p in world.people
    )
    return {
        "lessons": await copy_rows(session, Lesson.__table__, map(_row, world.lessons)),
        "user_profiles": await copy_rows(session, UserProfile.__table__, profiles),
        "access_links": await copy_rows(session, access_links, access_link_rows(world)),
    }


def events(world: World) -> Iterator[Envelope]:
    """``lesson.scheduled`` for every lesson, then ``lesson.completed`` or ``lesson.missed`` for the held ones."""
    for seeded in world.lessons:
        lesson = Lesson(**_row(seeded), series_id=None, price=None, currency=None, skills=[])
        yield world.envelope(lesson_scheduled(lesson), seeded.id, producer=PRODUCER, occurred_at=seeded.created_at)
        if seeded.held:
            payload = lesson_completed(lesson) if seeded.attended else lesson_missed(lesson)
            yield world.envelope(payload, seeded.id, producer=PRODUCER, occurred_at=seeded.ends_at)
