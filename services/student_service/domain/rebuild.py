"""Recompute what every profile derives from the ledger and the study days: the XP total and the
level from ``xp_ledger``, the stored streak figures and freezes from ``study_days`` and
``excused_days`` (the same pure functions the events use). Achievements are facts that were
announced, never revoked, so they are left as they are; nothing is published."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.domain.streaks import compute
from services.student_service.domain.xp import level_for_xp
from services.student_service.models import ExcusedDay, Profile, StudyDay, XpEntry


async def rebuild(session: AsyncSession) -> int:
    """Rewrite every profile's derived figures in the caller's transaction; how many profiles."""
    totals: dict[uuid.UUID, int] = {
        student_id: int(total)
        for student_id, total in (
            await session.execute(select(XpEntry.student_id, func.sum(XpEntry.amount)).group_by(XpEntry.student_id))
        ).all()
    }
    study: dict[uuid.UUID, set[date]] = defaultdict(set)
    for student_id, day in (await session.execute(select(StudyDay.student_id, StudyDay.day))).all():
        study[student_id].add(day)
    excused: dict[uuid.UUID, set[date]] = defaultdict(set)
    for student_id, day in (await session.execute(select(ExcusedDay.student_id, ExcusedDay.day))).all():
        excused[student_id].add(day)

    profiles = (await session.execute(select(Profile).with_for_update())).scalars().all()
    for profile in profiles:
        profile.xp = totals.get(profile.student_id, 0)
        profile.level = level_for_xp(max(profile.xp, 0))
        days = study.get(profile.student_id, set())
        # as the events leave it: the streak as of the latest study day
        streak = compute(days, excused.get(profile.student_id, set()), max(days)) if days else None
        profile.current_streak = streak.current if streak else 0
        profile.longest_streak = streak.longest if streak else 0
        profile.freezes_held = streak.freezes_held if streak else 0
    return len(profiles)
