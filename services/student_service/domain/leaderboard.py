"""The leaderboard among one tutor's students (DESIGN.md §6; docs/decisions/0015).

- What counts: XP earned with this tutor from lessons and homework, and the tutor's corrections (they
  fix what a lesson or homework earned). Top-ups, material views and tutor bonuses do not.
- Periods: ``all_time``, and ``weekly`` = the last 7 days up to now (a rolling window: the same for
  students in different time zones, never empty on a Monday morning).
- A hidden student (``leaderboard_visible`` false) is left out for everyone else and ranks no one
  down; they still see themselves, placed where they would stand.
- Ranks are competition ranks (equal XP, equal rank: 1, 2, 2, 4).
- Anonymised (the tutor's choice): a student sees the others as "Student #N" (N = place in the list)
  without ids; the tutor and admins always see names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.models import LeaderboardSettings, Profile, XpEntry
from shared.tables import access_links

Period = Literal["weekly", "all_time"]
COUNTED_SOURCES = ("lesson", "homework", "correction")
WEEK = timedelta(days=7)
NEIGHBOURS = 2  # places shown either side of the caller in the "neighbours" view


@dataclass(frozen=True)
class Member:
    student_id: uuid.UUID
    name: str | None
    xp: int
    visible: bool


@dataclass(frozen=True)
class Entry:
    rank: int
    student_id: uuid.UUID | None
    name: str
    xp: int
    you: bool


def since(period: Period, now: datetime) -> datetime | None:
    return now - WEEK if period == "weekly" else None


def rank(members: list[Member], viewer_id: uuid.UUID | None) -> list[Entry]:
    """The visible members (and the viewer, hidden or not), best first, with competition ranks."""
    shown = sorted(
        (m for m in members if m.visible or m.student_id == viewer_id), key=lambda m: (-m.xp, str(m.student_id))
    )
    entries: list[Entry] = []
    for place, m in enumerate(shown, start=1):
        same_as_previous = entries and entries[-1].xp == m.xp
        entries.append(
            Entry(
                rank=entries[-1].rank if same_as_previous else place,
                student_id=m.student_id,
                name=m.name or f"Student #{place}",
                xp=m.xp,
                you=m.student_id == viewer_id,
            )
        )
    return entries


def anonymise(entries: list[Entry]) -> list[Entry]:
    """Everyone but the viewer as "Student #<place>", without an id."""
    return [e if e.you else replace(e, student_id=None, name=f"Student #{place}") for place, e in enumerate(entries, 1)]


def neighbours(entries: list[Entry]) -> list[Entry]:
    """The viewer's place and up to two either side."""
    at = next((i for i, e in enumerate(entries) if e.you), None)
    if at is None:
        return []
    return entries[max(at - NEIGHBOURS, 0) : at + NEIGHBOURS + 1]


async def members(
    session: AsyncSession, tutor_id: uuid.UUID, period: Period, now: datetime, viewer_id: uuid.UUID | None
) -> list[Member]:
    """The tutor's linked students (and the viewing student) with the XP that counts in the period."""
    start = since(period, now)
    counted = and_(
        XpEntry.student_id == Profile.student_id,
        XpEntry.tutor_id == tutor_id,
        XpEntry.source.in_(COUNTED_SOURCES),
        *([XpEntry.occurred_at >= start] if start is not None else []),
    )
    linked = select(access_links.c.student_id).where(
        access_links.c.principal_id == tutor_id, access_links.c.relation == "tutor", access_links.c.active == 1
    )
    in_board = Profile.student_id.in_(linked)
    if viewer_id is not None:
        in_board = in_board | (Profile.student_id == viewer_id)
    rows = await session.execute(
        select(
            Profile.student_id,
            func.coalesce(Profile.display_name, Profile.full_name),
            Profile.leaderboard_visible,
            func.coalesce(func.sum(XpEntry.amount), 0),
        )
        .outerjoin(XpEntry, counted)
        .where(in_board)
        .group_by(Profile.student_id)
    )
    return [Member(student_id, name, int(xp), visible) for student_id, name, visible, xp in rows.all()]


async def anonymised(session: AsyncSession, tutor_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(select(LeaderboardSettings.anonymise).where(LeaderboardSettings.tutor_id == tutor_id))
    )
