"""The leaderboard among one tutor's students (rules in ``domain/leaderboard.py``, why in
docs/decisions/0015): a student sees their tutor's board, a tutor their own students', an admin any
tutor's (``tutor_id``). The tutor chooses whether students see each other anonymised."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, StrictBool
from sqlalchemy.dialects.postgresql import insert

from services.student_service.domain import leaderboard
from services.student_service.models import LeaderboardSettings, Profile
from shared.auth.deps import Caller, TutorId, require_roles, user_id_of
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import NotFound, Unprocessable
from shared.tables import access_links

router = APIRouter(prefix="/api/v1/students/leaderboard", tags=["leaderboard"])


class EntryOut(BaseModel):
    rank: int
    student_id: uuid.UUID | None  # null for another student on an anonymised board
    name: str
    xp: int
    you: bool


class LeaderboardOut(BaseModel):
    tutor_id: uuid.UUID
    period: leaderboard.Period
    view: Literal["all", "neighbours"]
    since: datetime | None  # the window's start for "weekly"
    anonymised: bool
    items: list[EntryOut]


def _field_error(field: str, message: str) -> Unprocessable:
    return Unprocessable(message, details=[{"field": field, "message": message, "type": "value_error"}])


async def _board_tutor(session: SessionDep, caller: Caller, tutor_id: uuid.UUID | None) -> uuid.UUID:
    """Whose board the caller may see: their tutor's (a student), their own (a tutor), any (an admin)."""
    if caller.role == "admin":
        if tutor_id is None:
            raise _field_error("tutor_id", "an admin names the tutor whose board to show")
        return tutor_id
    me = user_id_of(caller)
    if caller.role == "tutor":
        if tutor_id not in (None, me):
            raise NotFound("Leaderboard not found")
        return me
    profile = await session.get(Profile, me)
    if profile is None:
        raise NotFound("Profile not found")
    if tutor_id is None or tutor_id == profile.tutor_id:
        if profile.tutor_id is None:
            raise NotFound("Leaderboard not found")
        return profile.tutor_id
    # another of the student's tutors
    linked = await session.scalar(
        access_links.select()
        .with_only_columns(access_links.c.active)
        .where(
            access_links.c.principal_id == tutor_id,
            access_links.c.student_id == me,
            access_links.c.relation == "tutor",
        )
    )
    if not linked:
        raise NotFound("Leaderboard not found")
    return tutor_id


@router.get("", response_model=LeaderboardOut)
async def show(
    caller: Annotated[Caller, Depends(require_roles("student", "tutor", "admin"))],
    session: SessionDep,
    now: Now,
    period: leaderboard.Period = "weekly",
    view: Literal["all", "neighbours"] = "all",
    tutor_id: uuid.UUID | None = None,
) -> dict[str, object]:
    board_tutor = await _board_tutor(session, caller, tutor_id)
    viewer = user_id_of(caller) if caller.role == "student" else None
    if view == "neighbours" and viewer is None:
        raise _field_error("view", "'neighbours' is the calling student's place and those around it")
    entries = leaderboard.rank(await leaderboard.members(session, board_tutor, period, now, viewer), viewer)
    anonymised = await leaderboard.anonymised(session, board_tutor)
    if anonymised and viewer is not None:
        entries = leaderboard.anonymise(entries)
    if view == "neighbours":
        entries = leaderboard.neighbours(entries)
    return {
        "tutor_id": board_tutor,
        "period": period,
        "view": view,
        "since": leaderboard.since(period, now),
        "anonymised": anonymised,
        "items": [asdict(e) for e in entries],
    }


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anonymise: StrictBool


class SettingsOut(BaseModel):
    tutor_id: uuid.UUID
    anonymise: bool


@router.get("/settings", response_model=SettingsOut)
async def settings(tutor: TutorId, session: SessionDep) -> dict[str, object]:
    return {"tutor_id": tutor, "anonymise": await leaderboard.anonymised(session, tutor)}


@router.put("/settings", response_model=SettingsOut)
async def change_settings(body: SettingsIn, tutor: TutorId, session: SessionDep) -> dict[str, object]:
    """The tutor's choice: students see each other as "Student #N" (the tutor always sees names)."""
    statement = insert(LeaderboardSettings).values(tutor_id=tutor, anonymise=body.anonymise)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[LeaderboardSettings.tutor_id], set_={"anonymise": statement.excluded.anonymise}
        )
    )
    return {"tutor_id": tutor, "anonymise": body.anonymise}
