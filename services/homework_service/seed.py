"""homework-service's part of a seeded world (``shared/seeding.py``): the assignments in every state, their
hand-ins, its access links. An assignment already past its deadline was announced overdue at the deadline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.homework_service.events import homework_assigned, homework_graded, homework_overdue, homework_submitted
from services.homework_service.models import Homework, Submission
from shared import seeding
from shared.events.envelope import Envelope
from shared.seeding import World, access_link_rows, copy_rows
from shared.tables import access_links

PRODUCER = "homework-service"


def _overdue_at(world: World, work: seeding.Homework) -> Any:
    return work.due_at if work.status == "assigned" and work.due_at <= world.as_of else None


def _row(world: World, work: seeding.Homework) -> dict[str, Any]:
    return {
        "id": work.id,
        "tutor_id": work.tutor_id,
        "student_id": work.student_id,
        "lesson_id": work.lesson_id,
        "title": work.title,
        "due_at": work.due_at,
        "status": work.status,
        "grade": work.grade,
        "graded_at": work.graded_at,
        "overdue_notified_at": _overdue_at(world, work),
        "created_at": work.assigned_at,
        "updated_at": work.graded_at or work.submitted_at or work.assigned_at,
    }


def _submission(work: seeding.Homework) -> dict[str, Any]:
    return {
        "id": work.submission_id,
        "homework_id": work.id,
        "student_id": work.student_id,
        "text": work.answer,
        "late": False,
        "submitted_at": work.submitted_at,
        "created_at": work.submitted_at,
    }


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    handed_in = (_submission(work) for work in world.homework if work.submitted_at is not None)
    return {
        "homework": await copy_rows(session, Homework.__table__, (_row(world, work) for work in world.homework)),
        "submissions": await copy_rows(session, Submission.__table__, handed_in),
        "access_links": await copy_rows(session, access_links, access_link_rows(world)),
    }


def events(world: World) -> Iterator[Envelope]:
    """``homework.assigned`` for each, ``.submitted``, ``.graded`` and ``.overdue`` where they happened."""
    for work in world.homework:
        homework = Homework(**_row(world, work), material_ids=[])
        yield world.envelope(homework_assigned(homework), work.id, producer=PRODUCER, occurred_at=work.assigned_at)
        submission = None
        if work.submitted_at is not None:
            submission = Submission(**_submission(work), material_ids=[])
            payload = homework_submitted(homework, submission)
            yield world.envelope(payload, work.submission_id, producer=PRODUCER, occurred_at=work.submitted_at)
        if work.graded_at is not None:
            payload = homework_graded(homework, submission)
            yield world.envelope(payload, work.id, producer=PRODUCER, occurred_at=work.graded_at)
        if (overdue_at := _overdue_at(world, work)) is not None:
            yield world.envelope(homework_overdue(homework), work.id, producer=PRODUCER, occurred_at=overdue_at)
