"""Profiles and XP awards. Each award is one ledger row keyed by its source; the profile's total and
level follow it in the same transaction, with ``student.xp_awarded`` and one ``student.level_up`` per
level crossed (an award may cross several)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

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
# anew for every award; the profiles are locked in student order, so two transactions locking several
# cannot deadlock each other
_LOCK_PROFILES = (
    select(Profile)
    .where(Profile.student_id.in_(bindparam("ids", expanding=True)))
    .order_by(Profile.student_id)
    .with_for_update()
)
_RECORD_AWARD = insert(_LEDGER).on_conflict_do_nothing(index_elements=[_LEDGER.c.source_key]).returning(_LEDGER.c.id)
_RECORD_AWARDS = (
    insert(_LEDGER).on_conflict_do_nothing(index_elements=[_LEDGER.c.source_key]).returning(_LEDGER.c.source_key)
)


async def lock_profiles(
    session: AsyncSession, tutors: Mapping[uuid.UUID, uuid.UUID | None]
) -> dict[uuid.UUID, Profile]:
    """The profiles of ``tutors``' students (student → the tutor to create it with), locked; those that do
    not exist yet are created (an award may beat student.linked). One statement when all exist."""
    wanted = sorted(tutors)
    profiles = {p.student_id: p for p in (await session.execute(_LOCK_PROFILES, {"ids": wanted})).scalars()}
    missing = [student_id for student_id in wanted if student_id not in profiles]
    if missing:
        await session.execute(
            insert(Profile)
            .values([{"student_id": student_id, "tutor_id": tutors[student_id]} for student_id in missing])
            .on_conflict_do_nothing()
        )
        profiles.update((p.student_id, p) for p in (await session.execute(_LOCK_PROFILES, {"ids": missing})).scalars())
    return profiles


async def ensure_profile(session: AsyncSession, student_id: uuid.UUID, tutor_id: uuid.UUID | None) -> Profile:
    """The student's profile, locked; created when it does not exist yet. One statement when it exists."""
    profile = (await lock_profiles(session, {student_id: tutor_id}))[student_id]
    adopt_tutor(profile, tutor_id)
    return profile


def adopt_tutor(profile: Profile, tutor_id: uuid.UUID | None) -> None:
    """A profile created before its tutor was known takes the first one an event names."""
    if profile.tutor_id is None and tutor_id is not None:
        profile.tutor_id = tutor_id


async def award(session: AsyncSession, entry: dict[str, Any], *, profile: Profile | None = None) -> Standing | None:
    """Record one award (``entry``: a :func:`ledger_row`); None (and nothing changes) when its source
    was already awarded, else the student's achievement standing after it (for a later check in the
    same transaction). ``profile``: the student's profile, already locked by ``ensure_profile`` in
    this transaction.

    The profile's changes are flushed with the transaction (one UPDATE for everything the event changes)."""
    if profile is None:
        profile = await ensure_profile(session, entry["student_id"], entry["tutor_id"])
    inserted = await session.execute(_RECORD_AWARD, entry)
    if inserted.scalar_one_or_none() is None:
        return None
    await credit(
        session,
        profile,
        tutor_id=entry["tutor_id"],
        amount=entry["amount"],
        source=entry["source"],
        source_event_id=entry["source_event_id"],
        reason=entry["reason"],
    )
    known = await standing(session, entry["student_id"])
    await unlock_earned(session, profile, entry["occurred_at"], known)
    return known


def ledger_row(
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
) -> dict[str, Any]:
    """One row of the XP ledger, for :func:`award` or :func:`record_awards`."""
    return {
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
    }


async def record_awards(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert ledger rows (``ledger_row``) in one statement; the source keys that were not awarded before."""
    if not rows:
        return set()
    return set((await session.execute(_RECORD_AWARDS, list(rows))).scalars())


async def credit(
    session: AsyncSession,
    profile: Profile,
    *,
    tutor_id: uuid.UUID | None,
    amount: int,
    source: str,
    source_event_id: uuid.UUID | None,
    reason: str | None,
) -> None:
    """An award recorded in the ledger moves the profile's total and level: ``student.xp_awarded``, and
    ``student.level_up`` for each level crossed."""
    previous_level = profile.level
    profile.xp += amount
    profile.level = level_for_xp(max(profile.xp, 0))
    await add_event(
        session,
        StudentXpAwarded(
            student_id=profile.student_id,
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
                student_id=profile.student_id,
                tutor_id=tutor_id,
                previous_level=level - 1,
                level=level,
                total_xp=profile.xp,
            ),
        )


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
