"""The game profile (DESIGN.md §3's fixed point): ``GET /api/v1/students/{student_id}/profile``,
``me`` for the calling student. Who may see it is the shared rule: the student, their tutor and
parents, admins; anyone else gets 404."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from services.student_service.domain.achievements import progress
from services.student_service.domain.profiles import get_profile
from services.student_service.models import Profile, XpEntry
from shared.auth.access import StudentAccessDep
from shared.auth.deps import CurrentUser
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/api/v1/students", tags=["students"])


class AchievementOut(BaseModel):
    code: str
    rarity: str
    unlocked_at: datetime


class ProfileOut(BaseModel):
    student_id: uuid.UUID
    display_name: str | None = None
    xp: int
    level: int
    next_level_xp: int
    current_streak: int
    longest_streak: int
    achievements: list[AchievementOut]


async def _student_id(student_id: str, caller: CurrentUser, access: StudentAccessDep) -> uuid.UUID:
    """``me`` is the calling student; any other id must be a student the caller may see (else 404)."""
    if student_id == "me":
        if caller.role != "student":
            raise NotFound("Profile not found")
        return uuid.UUID(caller.id)
    try:
        wanted = uuid.UUID(student_id)
    except ValueError:
        raise NotFound("Profile not found") from None
    if not await access.can_access(wanted):
        raise NotFound("Profile not found")
    return wanted


StudentId = Annotated[uuid.UUID, Depends(_student_id)]


@router.get("/{student_id}/profile", response_model=ProfileOut)
async def profile(student_id: StudentId, session: SessionDep, request: Request) -> dict[str, object]:
    return await get_profile(session, student_id, request.app.state.clock.now())


class AchievementProgressOut(BaseModel):
    code: str
    rarity: str
    title: str
    target: int
    progress: int
    unlocked_at: datetime | None


class AchievementsOut(BaseModel):
    items: list[AchievementProgressOut]


@router.get("/{student_id}/achievements", response_model=AchievementsOut)
async def achievements(student_id: StudentId, session: SessionDep) -> dict[str, object]:
    """Every achievement with the student's progress towards it; unlocked ones carry ``unlocked_at``."""
    profile = await session.get(Profile, student_id)
    if profile is None:
        raise NotFound("Profile not found")
    return {"items": await progress(session, profile)}


class XpEntryOut(BaseModel):
    id: uuid.UUID
    amount: int
    source: str
    source_id: str | None  # what earned it: the lesson, homework, material or top-up id
    source_event_id: uuid.UUID | None
    reason: str | None
    occurred_at: datetime


class XpHistoryOut(BaseModel):
    items: list[XpEntryOut]
    next_cursor: str | None = None


@router.get("/{student_id}/xp", response_model=XpHistoryOut)
async def xp_history(
    student_id: StudentId, session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, object]:
    """The student's XP ledger, newest first."""
    rows = (
        await session.execute(
            select(XpEntry)
            .where(XpEntry.student_id == student_id)
            .order_by(XpEntry.occurred_at.desc(), XpEntry.id)
            .limit(limit)
        )
    ).scalars()
    return {
        "items": [
            {
                "id": row.id,
                "amount": row.amount,
                "source": row.source,
                "source_id": row.source_key.split(":")[1] if ":" in row.source_key else None,
                "source_event_id": row.source_event_id,
                "reason": row.reason,
                "occurred_at": row.occurred_at,
            }
            for row in rows
        ],
        "next_cursor": None,
    }
