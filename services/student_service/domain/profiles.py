"""Profiles and XP awards. Each award is one ledger row keyed by its source; the profile's total and
level follow it in the same transaction, with ``student.xp_awarded`` and one ``student.level_up`` per
level crossed (an award may cross several)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.domain.achievements import Standing, standing, unlock_earned
from services.student_service.domain.streaks import current
from services.student_service.domain.xp import level_for_xp, xp_for_level
from services.student_service.models import Achievement, Profile, XpEntry
from shared.errors import NotFound
from shared.events.catalogue import StudentLevelUp, StudentXpAwarded
from shared.events.outbox import add_event

_LEDGER = XpEntry.__table__

# built once and run with parameters, so SQLAlchemy does not build them and compute their cache keys
# anew for every award
_LOCK_PROFILE = select(Profile).where(Profile.student_id == bindparam("student_id")).with_for_update()
_RECORD_AWARD = insert(_LEDGER).on_conflict_do_nothing(index_elements=[_LEDGER.c.source_key]).returning(_LEDGER.c.id)


async def ensure_profile(session: AsyncSession, student_id: uuid.UUID, tutor_id: uuid.UUID | None) -> Profile:
    """The student's profile, locked; created when it does not exist yet (an award may beat student.linked).
    One statement when it exists (the usual case)."""
    locked = {"student_id": student_id}
    profile = (await session.execute(_LOCK_PROFILE, locked)).scalar_one_or_none()
    if profile is None:
        await session.execute(insert(Profile).values(student_id=student_id, tutor_id=tutor_id).on_conflict_do_nothing())
        profile = (await session.execute(_LOCK_PROFILE, locked)).scalar_one()
    if profile.tutor_id is None and tutor_id is not None:
        profile.tutor_id = tutor_id
    return profile


async def award(
    session: AsyncSession,
    *,
    student_id: uuid.UUID,
    tutor_id: uuid.UUID | None,
    amount: int,
    source: str,
    source_key: str,
    occurred_at: datetime,
    source_event_id: uuid.UUID | None = None,
    reason: str | None = None,
    grade: int | None = None,
    entry_id: uuid.UUID | None = None,
    profile: Profile | None = None,
) -> Standing | None:
    """Record one award; None (and nothing changes) when its source was already awarded, else the
    student's achievement standing after it (for a later check in the same transaction).
    ``profile``: the student's profile, already locked by ``ensure_profile`` in this transaction.

    The profile's changes are flushed with the transaction (one UPDATE for everything the event changes)."""
    if profile is None:
        profile = await ensure_profile(session, student_id, tutor_id)
    inserted = await session.execute(
        _RECORD_AWARD,
        {
            "id": entry_id or uuid.uuid4(),
            "student_id": student_id,
            "tutor_id": tutor_id,
            "amount": amount,
            "source": source,
            "source_key": source_key,
            "source_event_id": source_event_id,
            "reason": reason,
            "grade": grade,
            "occurred_at": occurred_at,
        },
    )
    if inserted.scalar_one_or_none() is None:
        return None
    previous_level = profile.level
    profile.xp += amount
    profile.level = level_for_xp(max(profile.xp, 0))
    await add_event(
        session,
        StudentXpAwarded(
            student_id=student_id,
            tutor_id=tutor_id,
            amount=amount,
            source=source,  # type: ignore[arg-type]
            source_event_id=source_event_id,
            reason=reason,
            total_xp=profile.xp,
        ),
    )
    for level in range(previous_level + 1, profile.level + 1):
        await add_event(
            session,
            StudentLevelUp(
                student_id=student_id, tutor_id=tutor_id, previous_level=level - 1, level=level, total_xp=profile.xp
            ),
        )
    known = await standing(session, student_id)
    await unlock_earned(session, profile, occurred_at, known)
    return known


async def get_profile(session: AsyncSession, student_id: uuid.UUID, now: datetime) -> dict[str, object]:
    """The fixed point of DESIGN.md §3."""
    profile = await session.get(Profile, student_id)
    if profile is None:
        raise NotFound("Profile not found")
    achievements = (
        (
            await session.execute(
                select(Achievement).where(Achievement.student_id == student_id).order_by(Achievement.unlocked_at)
            )
        )
        .scalars()
        .all()
    )
    streak = await current(session, profile, now)
    return {
        "student_id": profile.student_id,
        "display_name": profile.display_name,
        "xp": profile.xp,
        "level": profile.level,
        "next_level_xp": xp_for_level(profile.level + 1),
        "current_streak": streak.current,
        "longest_streak": max(profile.longest_streak, streak.longest),
        "achievements": [{"code": a.code, "rarity": a.rarity, "unlocked_at": a.unlocked_at} for a in achievements],
    }
