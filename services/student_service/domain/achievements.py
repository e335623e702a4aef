"""Achievements: what unlocks each (a counter from the XP ledger or the profile, and a target), in four
rarities. Each unlocks once, with ``student.achievement_unlocked``, and is never revoked; the progress
towards locked ones is what ``progress`` answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Uuid, and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
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


@dataclass
class Standing:
    """What the rules need from the database for one student: the ledger's counters and the codes
    already unlocked. Loaded in one query; kept up to date by ``unlock_earned`` within a transaction
    holding the profile's lock (and by whoever adds to the ledger after loading it, as a batch of
    completed lessons does), so a second check after the streak changes needs no query."""

    counts: dict[str, int]
    unlocked: set[str]

    def values(self, profile: Profile) -> dict[str, int]:
        return {**self.counts, "level": profile.level, "streak": profile.longest_streak}

    def count_award(self, source: str, grade: int | None) -> None:
        """What one more award of ``source`` (graded ``grade``) adds to the counters: as ``_STANDINGS``
        would count it after it is in the ledger."""
        for metric, (counted_source, excellent_only) in LEDGER_COUNTERS.items():
            if source == counted_source and (not excellent_only or grade == 5):
                self.counts[metric] += 1


# the ledger's counters the rules look at: metric -> (the award's source, graded 5 only); counted in SQL
# by _STANDINGS and in memory by Standing.count_award, from this one table
LEDGER_COUNTERS: dict[str, tuple[str, bool]] = {
    "lessons": ("lesson", False),
    "excellent_lessons": ("lesson", True),
    "homeworks": ("homework", False),
    "excellent_homeworks": ("homework", True),
    "materials": ("material", False),
}


_LEDGER = XpEntry.__table__.c
_ACHIEVEMENTS = Achievement.__table__


def _count(source: str, excellent_only: bool) -> ColumnElement[int]:
    condition = _LEDGER.source == source
    return func.count().filter(and_(condition, _LEDGER.grade == 5) if excellent_only else condition)


# one row per wanted student, even one with no ledger row yet: the ledger's counters and the codes unlocked
_WANTED = func.unnest(bindparam("ids", type_=ARRAY(Uuid()))).table_valued("student_id").render_derived()
_STANDINGS = (
    select(
        _WANTED.c.student_id,
        *(_count(source, excellent_only) for source, excellent_only in LEDGER_COUNTERS.values()),
        select(func.array_agg(_ACHIEVEMENTS.c.code))
        .where(_ACHIEVEMENTS.c.student_id == _WANTED.c.student_id)
        .scalar_subquery(),
    )
    .select_from(
        _WANTED.outerjoin(
            XpEntry.__table__,
            and_(
                _LEDGER.student_id == _WANTED.c.student_id,
                _LEDGER.source.in_(sorted({source for source, _ in LEDGER_COUNTERS.values()})),
            ),
        )
    )
    .group_by(_WANTED.c.student_id)
)


async def standings(session: AsyncSession, student_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Standing]:
    """Each student's counters the rules look at (awarded lessons, homeworks and materials from the
    ledger) and the achievements already unlocked, in one statement for all of them."""
    rows = await session.execute(_STANDINGS, {"ids": list(dict.fromkeys(student_ids))})
    return {
        student_id: Standing(dict(zip(LEDGER_COUNTERS, counts, strict=True)), set(codes or ()))
        for student_id, *counts, codes in rows.all()
    }


async def standing(session: AsyncSession, student_id: uuid.UUID) -> Standing:
    return (await standings(session, [student_id]))[student_id]


async def metrics(session: AsyncSession, profile: Profile) -> dict[str, int]:
    """The counters the rules look at: awarded lessons, homeworks and materials from the ledger."""
    return (await standing(session, profile.student_id)).values(profile)


async def unlock_earned(
    session: AsyncSession, profile: Profile, at: datetime, known: Standing | None = None
) -> list[str]:
    """Unlock every achievement whose target is reached and that is not unlocked yet; the codes unlocked.
    ``known``: the student's standing loaded earlier in this transaction (the ledger unchanged since),
    else it is loaded; either way it is updated with what this unlocks."""
    known = known or await standing(session, profile.student_id)
    rows = await announce_earned(session, profile, at, known)
    if rows:
        await insert_unlocked(session, rows)
    return [row["code"] for row in rows]


async def announce_earned(
    session: AsyncSession, profile: Profile, at: datetime, known: Standing
) -> list[dict[str, Any]]:
    """What ``unlock_earned`` decides and announces, without writing it: ``known`` updated, one
    ``student.achievement_unlocked`` per achievement, and the rows for ``insert_unlocked``.

    Only a transaction holding the student's profile lock unlocks achievements, and ``known`` was read
    under it, so what is not in ``known.unlocked`` is not in the table either."""
    values = known.values(profile)
    rows: list[dict[str, Any]] = []
    for rule in ACHIEVEMENTS:
        if values[rule.metric] < rule.target or rule.code in known.unlocked:
            continue
        known.unlocked.add(rule.code)
        rows.append({"student_id": profile.student_id, "code": rule.code, "rarity": rule.rarity, "unlocked_at": at})
        await add_event(
            session,
            StudentAchievementUnlocked(
                student_id=profile.student_id, tutor_id=profile.tutor_id, code=rule.code, rarity=rule.rarity
            ),
        )
    return rows


async def insert_unlocked(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write what ``announce_earned`` decided (for one student or many: one statement)."""
    await session.execute(_INSERT_UNLOCKED, list(rows))


_INSERT_UNLOCKED = insert(_ACHIEVEMENTS).on_conflict_do_nothing()  # built once; one parameter set per row


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
