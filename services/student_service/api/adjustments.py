"""The tutor's bonuses and corrections: ``POST /api/v1/students/{student_id}/xp-adjustments``, one
ledger row each (source ``bonus`` or ``correction``) with the reason, announced with
``student.xp_awarded`` like any award. The level follows the total (a negative correction can lower
it); achievements once unlocked stay. ``Idempotency-Key`` makes a retried grant count once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from services.student_service.domain.profiles import award, ensure_profile, ledger_row
from shared.auth.access import StudentAccessDep
from shared.auth.deps import TutorId
from shared.clock import Now
from shared.db import SessionDep
from shared.idempotency import IdempotentRoute

router = APIRouter(prefix="/api/v1/students", tags=["students"], route_class=IdempotentRoute)

MAX_ADJUSTMENT = 10_000  # more than a year of lessons: anything bigger is a typo


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # a bonus rewards (positive); a correction fixes what was earned (either sign). Default: by the sign.
    kind: Literal["bonus", "correction"] | None = None
    amount: Annotated[StrictInt, Field(ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("reason", mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("amount")
    @classmethod
    def _not_zero_and_a_positive_bonus(cls, value: int, info: ValidationInfo) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        if value < 0 and info.data.get("kind") == "bonus":
            raise ValueError("a bonus must be positive; take XP back with kind 'correction'")
        return value

    @property
    def source(self) -> str:
        return self.kind or ("bonus" if self.amount > 0 else "correction")


class AdjustmentOut(BaseModel):
    id: uuid.UUID
    student_id: uuid.UUID
    amount: int
    source: str
    reason: str
    occurred_at: datetime
    xp: int  # the student's total after it
    level: int


@router.post("/{student_id}/xp-adjustments", status_code=201, response_model=AdjustmentOut)
async def adjust_xp(
    student_id: uuid.UUID,
    body: AdjustmentIn,
    tutor: TutorId,
    access: StudentAccessDep,
    session: SessionDep,
    now: Now,
) -> dict[str, object]:
    """Only the student's own tutor (another tutor gets 404; students, parents and admins 403)."""
    await access.ensure(student_id)
    adjustment_id = uuid.uuid4()
    await award(
        session,
        ledger_row(
            student_id=student_id,
            tutor_id=tutor,
            amount=body.amount,
            source=body.source,
            source_key=f"{body.source}:{adjustment_id}",
            occurred_at=now,
            reason=body.reason,
            entry_id=adjustment_id,
        ),
    )
    profile = await ensure_profile(session, student_id, tutor)  # the row award just changed
    return {
        "id": adjustment_id,
        "student_id": student_id,
        "amount": body.amount,
        "source": body.source,
        "reason": body.reason,
        "occurred_at": now,
        "xp": profile.xp,
        "level": profile.level,
    }
