"""Achievements: what unlocks each (a counter from the XP ledger or the profile, and a target), in four
rarities. Each unlocks once, with ``student.achievement_unlocked``, and is never revoked; the progress
towards locked ones is what ``progress`` answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.models import Achievement, Profile, XpEntry
from shared.events.catalogue import StudentAchievementUnlocked
from shared.events.outbox import add_event

Rarity = Literal["common", "rare", "epic", "legendary"]
Metric = Literal["lessons", "excellent_lessons", "homeworks", "excellent_homeworks", "materials", "level", "streak"]


@dataclass(frozen=True)
class Rule:
    code: str
    rarity: Rarity
    title: str
    metric: Metric
    target: int


ACHIEVEMENTS: tuple[Rule, ...] = (
    Rule("first_lesson", "common", "First lesson", "lessons", 1),
    Rule("first_homework", "common", "First homework", "homeworks", 1),
    Rule("first_material", "common", "First material opened", "materials", 1),
    Rule("first_excellent_lesson", "common", "First lesson graded 5", "excellent_lessons", 1),
    Rule("level_5", "common", "Level 5", "level", 5),
    Rule("lessons_50", "rare", "50 lessons", "lessons", 50),
    Rule("excellent_homeworks_10", "rare", "10 excellent homeworks", "excellent_homeworks", 10),
    Rule("homeworks_25", "rare", "25 homeworks", "homeworks", 25),
    Rule("materials_20", "rare", "20 materials opened", "materials", 20),
    Rule("streak_7", "rare", "A 7-day streak", "streak", 7),
    Rule("level_10", "rare", "Level 10", "level", 10),
    Rule("lessons_100", "epic", "100 lessons", "lessons", 100),
    Rule("streak_30", "epic", "A 30-day streak", "streak", 30),
    Rule("excellent_lessons_25", "epic", "25 lessons graded 5", "excellent_lessons", 25),
    Rule("level_25", "epic", "Level 25", "level", 25),
    Rule("level_50", "legendary", "Level 50", "level", 50),
    Rule("lessons_250", "legendary", "250 lessons", "lessons", 250),
)
BY_CODE = {rule.code: rule for rule in ACHIEVEMENTS}


async def metrics(session: AsyncSession, profile: Profile) -> dict[str, int]:
    """The counters the rules look at: awarded lessons, homeworks and materials from the ledger."""
    rows = await session.execute(
        select(XpEntry.source, func.count(), func.count().filter(XpEntry.grade == 5))
        .where(XpEntry.student_id == profile.student_id, XpEntry.source.in_(("lesson", "homework", "material")))
        .group_by(XpEntry.source)
    )
    counts = {source: (total, excellent) for source, total, excellent in rows.all()}
    return {
        "lessons": counts.get("lesson", (0, 0))[0],
        "excellent_lessons": counts.get("lesson", (0, 0))[1],
        "homeworks": counts.get("homework", (0, 0))[0],
        "excellent_homeworks": counts.get("homework", (0, 0))[1],
        "materials": counts.get("material", (0, 0))[0],
        "level": profile.level,
        "streak": profile.longest_streak,
    }


async def unlock_earned(session: AsyncSession, profile: Profile, at: datetime) -> list[str]:
    """Unlock every achievement whose target is reached and that is not unlocked yet; the codes unlocked."""
    values = await metrics(session, profile)
    unlocked: list[str] = []
    for rule in ACHIEVEMENTS:
        if values[rule.metric] < rule.target:
            continue
        inserted = await session.execute(
            insert(Achievement)
            .values(student_id=profile.student_id, code=rule.code, rarity=rule.rarity, unlocked_at=at)
            .on_conflict_do_nothing()
            .returning(Achievement.code)
        )
        if inserted.scalar_one_or_none() is None:
            continue
        unlocked.append(rule.code)
        await add_event(
            session,
            StudentAchievementUnlocked(
                student_id=profile.student_id, tutor_id=profile.tutor_id, code=rule.code, rarity=rule.rarity
            ),
        )
    return unlocked


async def progress(session: AsyncSession, profile: Profile) -> list[dict[str, object]]:
    values = await metrics(session, profile)
    unlocked = {
        a.code: a.unlocked_at
        for a in (
            await session.execute(select(Achievement).where(Achievement.student_id == profile.student_id))
        ).scalars()
    }
    return [
        {
            "code": rule.code,
            "rarity": rule.rarity,
            "title": rule.title,
            "target": rule.target,
            "progress": min(values[rule.metric], rule.target) if rule.code not in unlocked else rule.target,
            "unlocked_at": unlocked.get(rule.code),
        }
        for rule in ACHIEVEMENTS
    ]
