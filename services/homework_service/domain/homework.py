"""The rules of an assignment, as plain functions over a session (no HTTP).

assigned ──submit──▶ submitted ──grade──▶ graded (final)
   ▲                  │  ▲ resubmit
   └──── (returned) ◀─return
A returned assignment is submitted again; an assignment is graded once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.homework_service.models import Homework, Submission
from shared.errors import Conflict, NotFound


@dataclass(frozen=True)
class Draft:
    student_id: uuid.UUID
    title: str
    description: str | None
    due_at: datetime
    lesson_id: uuid.UUID | None
    link: str | None
    material_ids: list[uuid.UUID]


async def get_homework(session: AsyncSession, homework_id: uuid.UUID, *, for_update: bool = False) -> Homework:
    statement = select(Homework).where(Homework.id == homework_id)
    if for_update:
        statement = statement.with_for_update()
    homework = await session.scalar(statement)
    if homework is None:
        raise NotFound("Homework not found")
    return homework


async def assign(session: AsyncSession, tutor_id: uuid.UUID, draft: Draft) -> Homework:
    homework = Homework(
        tutor_id=tutor_id,
        student_id=draft.student_id,
        title=draft.title,
        description=draft.description,
        due_at=draft.due_at,
        lesson_id=draft.lesson_id,
        link=draft.link,
        material_ids=[str(x) for x in draft.material_ids],
        status="assigned",
    )
    session.add(homework)
    await session.flush()
    return homework


def _not_graded(homework: Homework) -> None:
    if homework.status == "graded":
        raise Conflict(
            "The homework is already graded", code="already_graded", details={"homework_id": str(homework.id)}
        )


async def submit(
    session: AsyncSession, homework: Homework, *, text: str | None, material_ids: list[uuid.UUID], now: datetime
) -> Submission:
    _not_graded(homework)
    submission = Submission(
        homework_id=homework.id,
        student_id=homework.student_id,
        text=text,
        material_ids=[str(x) for x in material_ids],
        late=now > homework.due_at,
        submitted_at=now,
    )
    session.add(submission)
    homework.status = "submitted"
    await session.flush()
    return submission


async def latest_submission(session: AsyncSession, homework_id: uuid.UUID) -> Submission | None:
    statement = (
        select(Submission)
        .where(Submission.homework_id == homework_id)
        .order_by(Submission.submitted_at.desc(), Submission.created_at.desc())
        .limit(1)
    )
    return await session.scalar(statement)


async def grade(
    session: AsyncSession, homework: Homework, *, grade: int, comment: str | None, now: datetime
) -> Submission | None:
    """Grade once; a tutor may also grade work never handed in here (checked in class): no submission."""
    _not_graded(homework)
    homework.status, homework.grade, homework.comment, homework.graded_at = "graded", grade, comment, now
    await session.flush()
    return await latest_submission(session, homework.id)


async def return_for_rework(session: AsyncSession, homework: Homework, *, comment: str | None, now: datetime) -> None:
    _not_graded(homework)
    if homework.status != "submitted":
        raise Conflict("Only a submitted homework can be returned", code="not_submitted")
    homework.status, homework.comment, homework.returned_at = "returned", comment, now
    await session.flush()
