"""/api/v1/lessons/plans/{student_id}: a student's study plan with the caller (tutor) or their tutors."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy import select

from services.lesson_service.api.schemas import PlanIn, PlanOut, PlanTopicOut
from services.lesson_service.domain import plans
from services.lesson_service.events import announce_reflowed
from services.lesson_service.models import Lesson, StudyPlanTopic
from shared.auth.access import AccessibleStudentId
from shared.auth.deps import Person, TutorId, user_id_of
from shared.db import SessionDep
from shared.errors import Unprocessable

router = APIRouter(prefix="/api/v1/lessons/plans", tags=["study plans"])


async def _plan_out(session: SessionDep, tutor_id: uuid.UUID, student_id: uuid.UUID) -> PlanOut:
    topics: list[StudyPlanTopic] = await plans.topics(session, tutor_id, student_id)
    lessons = await session.scalars(
        select(Lesson).where(Lesson.plan_topic_id.in_([t.id for t in topics])).order_by(Lesson.starts_at)
    )
    by_topic: dict[uuid.UUID, Lesson] = {}
    for lesson in lessons:
        if lesson.plan_topic_id is not None:
            by_topic[lesson.plan_topic_id] = lesson
    items = []
    for topic in topics:
        lesson = by_topic.get(topic.id)
        state = "pending" if lesson is None else ("covered" if lesson.status == "completed" else "planned")
        items.append(
            PlanTopicOut(
                id=topic.id,
                position=topic.position,
                title=topic.title,
                status=state,
                lesson_id=lesson.id if lesson else None,
            )
        )
    return PlanOut(student_id=student_id, tutor_id=tutor_id, topics=items)


@router.put("/{student_id}")
async def replace_plan(
    body: PlanIn, student_id: AccessibleStudentId, tutor_id: TutorId, session: SessionDep
) -> PlanOut:
    """The plan as an ordered list of topics; scheduled lessons take them in order."""
    await plans.replace_plan(session, tutor_id, student_id, body.topics)
    await announce_reflowed(session)
    return await _plan_out(session, tutor_id, student_id)


@router.get("/{student_id}")
async def read_plan(
    student_id: AccessibleStudentId, caller: Person, session: SessionDep, tutor_id: uuid.UUID | None = None
) -> PlanOut:
    """A tutor reads their plan for the student; a student or parent names the tutor (``tutor_id``)."""
    if caller.role == "tutor":
        tutor_id = user_id_of(caller)
    elif tutor_id is None:
        raise Unprocessable("Name the tutor", details=[{"field": "tutor_id", "message": "required for your role"}])
    return await _plan_out(session, tutor_id, student_id)
