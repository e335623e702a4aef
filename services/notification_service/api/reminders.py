"""/api/v1/notifications/reminders: a lesson's reminders (whom, when, and whether sent), for whoever
may see the lesson's student (its tutor, the student, their parents)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from services.notification_service.models import Reminder
from shared.auth.access import StudentAccessDep
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/api/v1/notifications/reminders", tags=["reminders"])


class ReminderOut(BaseModel):
    id: uuid.UUID
    lesson_id: uuid.UUID
    user_id: uuid.UUID
    offset_minutes: int
    starts_at: datetime
    due_at: datetime
    status: str  # pending | sent | withdrawn | dropped
    sent_at: datetime | None
    notification_id: uuid.UUID | None


class ReminderList(BaseModel):
    items: list[ReminderOut]


@router.get("", response_model=ReminderList)
async def lesson_reminders(
    lesson_id: Annotated[uuid.UUID, Query(description="the lesson whose reminders are listed")],
    access: StudentAccessDep,
    session: SessionDep,
) -> ReminderList:
    """The lesson's reminders by due time; 404 for a lesson the caller may not see. A lesson the
    service has not heard of (yet) answers an empty list."""
    rows = list(
        await session.scalars(
            select(Reminder).where(Reminder.lesson_id == lesson_id).order_by(Reminder.due_at, Reminder.user_id)
        )
    )
    if rows and not await access.can_access(rows[0].student_id):
        raise NotFound("Lesson not found")
    return ReminderList(items=[ReminderOut.model_validate(r, from_attributes=True) for r in rows])
