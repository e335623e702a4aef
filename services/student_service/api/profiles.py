"""The game profile (DESIGN.md §3's fixed point): ``GET /api/v1/students/{student_id}/profile``,
``me`` for the calling student, with the student's achievements, XP history and recommendations. Who
may see them is the shared rule: the student, their tutor and parents, admins; anyone else gets 404.
The student manages their own display name and leaderboard visibility (``PATCH /me/profile``)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from sqlalchemy import select, tuple_

from services.student_service.api.deps import StudentId
from services.student_service.domain import recommendations
from services.student_service.domain.achievements import progress
from services.student_service.domain.profiles import get_profile
from services.student_service.models import Profile, XpEntry
from shared.auth.deps import Caller, require_roles, user_id_of
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import NotFound
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/students", tags=["students"])

DISPLAY_NAME_MAX = 50


class ProfileChange(BaseModel):
    """Only the fields sent change; ``display_name: null`` goes back to the account's name."""

    model_config = ConfigDict(extra="forbid")

    display_name: Annotated[str, Field(min_length=1, max_length=DISPLAY_NAME_MAX)] | None = None
    leaderboard_visible: StrictBool | None = None

    @field_validator("display_name", mode="before")
    @classmethod
    def _trimmed(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if any(not ch.isprintable() for ch in value):
                raise ValueError("must not contain control characters")
        return value


class ProfileSettingsOut(BaseModel):
    student_id: uuid.UUID
    display_name: str | None
    leaderboard_visible: bool


# declared before the "/{student_id}/..." routes: a static path must not be read as a student id
@router.patch("/me/profile", response_model=ProfileSettingsOut)
async def update_my_profile(
    body: ProfileChange,
    caller: Annotated[Caller, Depends(require_roles("student"))],
    session: SessionDep,
) -> dict[str, object]:
    profile = await session.get(Profile, user_id_of(caller), with_for_update=True)
    if profile is None:
        raise NotFound("Profile not found")
    if "display_name" in body.model_fields_set:
        profile.display_name = body.display_name
    if body.leaderboard_visible is not None:
        profile.leaderboard_visible = body.leaderboard_visible
    return {
        "student_id": profile.student_id,
        "display_name": profile.display_name,
        "leaderboard_visible": profile.leaderboard_visible,
    }


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


@router.get("/{student_id}/profile", response_model=ProfileOut)
async def profile(student_id: StudentId, session: SessionDep, now: Now) -> dict[str, object]:
    return await get_profile(session, student_id, now)


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
    student_id: StudentId, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> dict[str, object]:
    """The student's XP ledger, newest first, a page at a time (keyset on occurred_at and id)."""
    statement = select(XpEntry).where(XpEntry.student_id == student_id)
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(tuple_(XpEntry.occurred_at, XpEntry.id) < tuple_(*after))
    rows = list(
        (await session.execute(statement.order_by(XpEntry.occurred_at.desc(), XpEntry.id.desc()).limit(limit + 1)))
        .scalars()
        .all()
    )
    page, more = rows[:limit], len(rows) > limit
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
            for row in page
        ],
        "next_cursor": encode_cursor(page[-1].occurred_at, page[-1].id) if more else None,
    }


class RecommendationOut(BaseModel):
    code: str
    priority: int  # 1 is the most urgent
    params: dict[str, Any]
    message: str  # English, for API users; the bot renders its own text from code and params


class RecommendationsOut(BaseModel):
    items: list[RecommendationOut]


@router.get("/{student_id}/recommendations", response_model=RecommendationsOut)
async def student_recommendations(student_id: StudentId, session: SessionDep, now: Now) -> dict[str, object]:
    """What the student could do next, from their own data, most urgent first."""
    profile = await session.get(Profile, student_id)
    if profile is None:
        raise NotFound("Profile not found")
    data = await recommendations.load(session, profile, now)
    return {"items": [asdict(r) for r in recommendations.recommend(data, now)]}
