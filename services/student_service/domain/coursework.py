"""What the student is working on, learnt from other services' events for the recommendations: their
homework (assigned, handed in, graded), the latest completed lesson, and the tutor's materials shared
with them. Events may arrive in any order, so each one upserts and fills only what it knows."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.models import Homework, Material, MaterialShare, Profile
from shared.events.catalogue import LessonCompleted


async def record_homework(
    session: AsyncSession,
    *,
    homework_id: uuid.UUID,
    student_id: uuid.UUID,
    tutor_id: uuid.UUID,
    title: str,
    due_at: datetime,
    submitted_at: datetime | None = None,
    graded_at: datetime | None = None,
) -> None:
    """Upsert one assignment; a hand-in or a grade, once known, is never forgotten by an older event."""
    statement = insert(Homework).values(
        homework_id=homework_id,
        student_id=student_id,
        tutor_id=tutor_id,
        title=title,
        due_at=due_at,
        submitted_at=submitted_at,
        graded_at=graded_at,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Homework.homework_id],
            set_={
                "title": statement.excluded.title,
                "due_at": statement.excluded.due_at,
                "submitted_at": func.coalesce(Homework.submitted_at, statement.excluded.submitted_at),
                "graded_at": func.coalesce(Homework.graded_at, statement.excluded.graded_at),
            },
        )
    )


def record_last_lesson(profile: Profile, lesson: LessonCompleted) -> None:
    """Keep the latest completed lesson by its start: a lesson recorded late does not displace a later one."""
    if profile.last_lesson_at is not None and lesson.starts_at <= profile.last_lesson_at:
        return
    profile.last_lesson_id = lesson.lesson_id
    profile.last_lesson_at = lesson.starts_at
    profile.last_lesson_subject = lesson.subject
    profile.last_lesson_topic = lesson.topic


async def record_material(
    session: AsyncSession,
    *,
    material_id: uuid.UUID,
    owner_id: uuid.UUID,
    title: str,
    subject: str | None = None,
    all_students: bool = False,
) -> None:
    """Upsert a tutor's material; ``subject`` comes only with material.uploaded, and sharing with every
    student is never taken back by an older share event."""
    statement = insert(Material).values(
        material_id=material_id, owner_id=owner_id, title=title, subject=subject, all_students=all_students
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Material.material_id],
            set_={
                "title": statement.excluded.title,
                "subject": func.coalesce(statement.excluded.subject, Material.subject),
                "all_students": Material.all_students | statement.excluded.all_students,
            },
        )
    )


async def record_shares(session: AsyncSession, material_id: uuid.UUID, student_ids: list[uuid.UUID]) -> None:
    if student_ids:
        await session.execute(
            insert(MaterialShare)
            .values([{"material_id": material_id, "student_id": s} for s in student_ids])
            .on_conflict_do_nothing()
        )
