"""/api/v1/homework: assign, list by status, read, submit (and resubmit), grade, return for rework."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import Select, select, tuple_

from services.homework_service.api.deps import VisibleHomework
from services.homework_service.api.schemas import (
    GradedOut,
    GradeIn,
    HomeworkIn,
    HomeworkOut,
    ReturnIn,
    ShownStatus,
    SubmissionIn,
    SubmissionOut,
)
from services.homework_service.domain import homework as rules
from services.homework_service.events import homework_assigned, homework_graded, homework_submitted
from services.homework_service.models import Homework, Submission
from shared.auth.access import StudentAccessDep
from shared.auth.deps import Caller, Person, TutorId, user_id_of
from shared.clock import Now
from shared.db import SessionDep
from shared.events.outbox import add_event
from shared.idempotency import IdempotentRoute
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.tables import access_links

# POSTs honour Idempotency-Key: a submission the bot queued offline, or a grade retried, lands once
router = APIRouter(prefix="/api/v1/homework", tags=["homework"], route_class=IdempotentRoute)


@router.post("", status_code=status.HTTP_201_CREATED)
async def assign_homework(
    body: HomeworkIn, tutor_id: TutorId, access: StudentAccessDep, session: SessionDep, now: Now
) -> HomeworkOut:
    """Assign homework to one of the tutor's students (a deadline already past is allowed: it is overdue)."""
    await access.ensure(body.student_id)
    homework = await rules.assign(session, tutor_id, body.draft())
    await add_event(session, homework_assigned(homework))
    return HomeworkOut.of(homework, now)


async def _visible(caller: Caller, access: StudentAccessDep, student_id: uuid.UUID | None) -> Select[tuple[Homework]]:
    statement = select(Homework)
    if student_id is not None:
        await access.ensure(student_id)
        statement = statement.where(Homework.student_id == student_id)
    if caller.role == "tutor":
        statement = statement.where(Homework.tutor_id == user_id_of(caller))
    elif caller.role == "student":
        statement = statement.where(Homework.student_id == user_id_of(caller))
    elif caller.role == "parent":
        children = select(access_links.c.student_id).where(
            access_links.c.principal_id == user_id_of(caller),
            access_links.c.relation == "parent",
            access_links.c.active == 1,
        )
        statement = statement.where(Homework.student_id.in_(children))
    return statement


@router.get("")
async def list_homework(
    caller: Person,
    access: StudentAccessDep,
    session: SessionDep,
    now: Now,
    status_: Annotated[ShownStatus | None, Query(alias="status")] = None,
    student_id: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[HomeworkOut]:
    """The caller's assignments, newest first; ``status=overdue`` is assigned and past its deadline."""
    statement = await _visible(caller, access, student_id)
    if status_ == "overdue":
        statement = statement.where(Homework.status == "assigned", Homework.due_at <= now)
    elif status_ == "assigned":
        statement = statement.where(Homework.status == "assigned", Homework.due_at > now)
    elif status_ is not None:
        statement = statement.where(Homework.status == status_)
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(tuple_(Homework.created_at, Homework.id) < tuple_(*after))
    statement = statement.order_by(Homework.created_at.desc(), Homework.id.desc()).limit(limit + 1)
    rows = list(await session.scalars(statement))
    page, more = rows[:limit], len(rows) > limit
    return Page[HomeworkOut](
        items=[HomeworkOut.of(x, now) for x in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    )


@router.get("/{homework_id}")
async def read_homework(seen: VisibleHomework, now: Now) -> HomeworkOut:
    return HomeworkOut.of(seen.homework, now)


@router.post("/{homework_id}/submissions", status_code=status.HTTP_201_CREATED)
async def submit_homework(body: SubmissionIn, seen: VisibleHomework, session: SessionDep, now: Now) -> SubmissionOut:
    """The student hands in text, photos and files (material ids); again until it is graded (409 after)."""
    homework = seen.require_student()
    material_ids = list(dict.fromkeys(body.material_ids))
    submission = await rules.submit(session, homework, text=body.text, material_ids=material_ids, now=now)
    await add_event(session, homework_submitted(homework, submission))
    return SubmissionOut.of(submission)


@router.get("/{homework_id}/submissions")
async def list_submissions(seen: VisibleHomework, session: SessionDep) -> Page[SubmissionOut]:
    """Every hand-in of the assignment, oldest first (a few per assignment: one page)."""
    statement = (
        select(Submission)
        .where(Submission.homework_id == seen.homework.id)
        .order_by(Submission.submitted_at, Submission.created_at)
    )
    return Page[SubmissionOut](items=[SubmissionOut.of(x) for x in await session.scalars(statement)], next_cursor=None)


@router.post("/{homework_id}/grade")
async def grade_homework(body: GradeIn, seen: VisibleHomework, session: SessionDep, now: Now) -> GradedOut:
    """The tutor grades 1-5 with a comment, once (409 ``already_graded`` after)."""
    homework = seen.require_tutor()
    submission = await rules.grade(session, homework, grade=body.grade, comment=body.comment, now=now)
    await add_event(session, homework_graded(homework, submission))
    return GradedOut(**HomeworkOut.of(homework, now).model_dump(), submission_id=submission.id if submission else None)


@router.post("/{homework_id}/return")
async def return_homework(body: ReturnIn, seen: VisibleHomework, session: SessionDep, now: Now) -> HomeworkOut:
    """The tutor sends a submitted homework back for rework with a comment; the student submits again."""
    homework = seen.require_tutor()
    await rules.return_for_rework(session, homework, comment=body.comment, now=now)
    return HomeworkOut.of(homework, now)
