"""Streaks (DESIGN.md §6) as a pure function of the student's study days, so a late event (counted for
its own day) simply recomputes them. A study day is a calendar day in the student's time zone with a
completed lesson, a homework submission or a material viewed. Walking the days in order: a missed day
is no break when the tutor cancelled that day's lesson; otherwise a held freeze covers it (one per
missed day), else the streak restarts. A freeze is earned for every 7 study days of a streak, at most
2 held."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.models import ExcusedDay, Profile, StudyDay
from shared.events.catalogue import StudentStreakUpdated
from shared.events.outbox import add_event

FREEZE_EVERY_DAYS = 7
MAX_FREEZES = 2
_STUDY = StudyDay.__table__
_EXCUSED = ExcusedDay.__table__


class Streak(NamedTuple):
    current: int
    longest: int
    freezes_held: int
    freezes_used: int


def compute(study_days: set[date], excused_days: set[date], today: date) -> Streak:
    current = longest = freezes = used = 0
    previous: date | None = None
    for day in sorted(d for d in study_days if d <= today):
        if previous is not None:
            current, freezes, used = _bridge(previous, day, current, freezes, used, excused_days)
        current += 1
        if current % FREEZE_EVERY_DAYS == 0:
            freezes = min(freezes + 1, MAX_FREEZES)
        longest = max(longest, current)
        previous = day
    if previous is not None and previous < today - timedelta(days=1):
        # the days since the last study day, up to yesterday, must be excused or frozen for it to go on
        current, freezes, used = _bridge(previous, today, current, freezes, used, excused_days)
    return Streak(current, longest, freezes, used)


def _bridge(
    previous: date, day: date, current: int, freezes: int, used: int, excused: set[date]
) -> tuple[int, int, int]:
    gap = [previous + timedelta(days=n) for n in range(1, (day - previous).days)]
    missed = [d for d in gap if d not in excused]
    if len(missed) <= freezes:
        return current, freezes - len(missed), used + len(missed)
    return 0, freezes, used


def local_day(profile: Profile, at: datetime) -> date:
    """The calendar day of ``at`` in the student's time zone."""
    return at.astimezone(ZoneInfo(profile.timezone)).date()


async def days(session: AsyncSession, student_id: uuid.UUID) -> tuple[set[date], set[date]]:
    """The student's study days and excused days, in one statement."""
    rows = await session.execute(
        select(_STUDY.c.day, literal(True))
        .where(_STUDY.c.student_id == student_id)
        .union_all(select(_EXCUSED.c.day, literal(False)).where(_EXCUSED.c.student_id == student_id))
    )
    study: set[date] = set()
    excused: set[date] = set()
    for day, is_study in rows.all():
        (study if is_study else excused).add(day)
    return study, excused


async def current(session: AsyncSession, profile: Profile, now: datetime) -> Streak:
    """The streak as of ``now`` (a streak whose missed days cannot be bridged any more shows 0)."""
    study, excused = await days(session, profile.student_id)
    return compute(study, excused, max([local_day(profile, now), *study]))


async def _recompute(
    session: AsyncSession, profile: Profile, study: set[date], excused: set[date], study_day: date, freeze_was_used: int
) -> None:
    streak = compute(study, excused, max(study))
    profile.current_streak, profile.longest_streak = streak.current, max(profile.longest_streak, streak.longest)
    profile.freezes_held = streak.freezes_held
    await add_event(
        session,
        StudentStreakUpdated(
            student_id=profile.student_id,
            tutor_id=profile.tutor_id,
            study_day=study_day,
            current_streak=streak.current,
            longest_streak=profile.longest_streak,
            freezes_held=streak.freezes_held,
            freeze_used=streak.freezes_used > freeze_was_used,
        ),
    )


async def record_study_day(session: AsyncSession, profile: Profile, at: datetime) -> bool:
    """Count the day of ``at`` as a study day (once); ``student.streak_updated`` when it is new.
    The caller holds the profile's lock, so the days read here are all there are but the new one."""
    day = local_day(profile, at)
    study, excused = await days(session, profile.student_id)
    before = compute(study, excused, max([day, *study])).freezes_used if study else 0
    inserted = await session.execute(
        insert(_STUDY).values(student_id=profile.student_id, day=day).on_conflict_do_nothing().returning(_STUDY.c.day)
    )
    if inserted.scalar_one_or_none() is None:
        return False
    await _recompute(session, profile, study | {day}, excused, day, before)
    return True


async def record_excused_day(session: AsyncSession, profile: Profile, at: datetime) -> None:
    """A day whose lesson the tutor cancelled: it does not break the streak."""
    await session.execute(
        insert(ExcusedDay).values(student_id=profile.student_id, day=local_day(profile, at)).on_conflict_do_nothing()
    )
