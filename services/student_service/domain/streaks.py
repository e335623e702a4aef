"""Streaks (DESIGN.md §6) as a pure function of the student's study days, so a late event (counted for
its own day) simply recomputes them. A study day is a calendar day in the student's time zone with a
completed lesson, a homework submission or a material viewed. Walking the days in order: a missed day
is no break when the tutor cancelled that day's lesson; otherwise a held freeze covers it (one per
missed day), else the streak restarts. A freeze is earned for every 7 study days of a streak, at most
2 held."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, literal, select
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


# built once; the students' study days (True) and excused days (False)
_WANTED = bindparam("ids", expanding=True)
_DAYS = (
    select(_STUDY.c.student_id, _STUDY.c.day, literal(True))
    .where(_STUDY.c.student_id.in_(_WANTED))
    .union_all(select(_EXCUSED.c.student_id, _EXCUSED.c.day, literal(False)).where(_EXCUSED.c.student_id.in_(_WANTED)))
)


async def days_of(
    session: AsyncSession, student_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[set[date], set[date]]]:
    """Each student's study days and excused days, in one statement for all of them."""
    wanted = list(dict.fromkeys(student_ids))
    found: dict[uuid.UUID, tuple[set[date], set[date]]] = {student_id: (set(), set()) for student_id in wanted}
    for student_id, day, is_study in (await session.execute(_DAYS, {"ids": wanted})).all():
        study, excused = found[student_id]
        (study if is_study else excused).add(day)
    return found


async def days(session: AsyncSession, student_id: uuid.UUID) -> tuple[set[date], set[date]]:
    """The student's study days and excused days, in one statement."""
    return (await days_of(session, [student_id]))[student_id]


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
    study, excused = await days(session, profile.student_id)
    day = local_day(profile, at)
    if not await note_study_day(session, profile, day, study, excused):
        return False
    await insert_study_days(session, [{"student_id": profile.student_id, "day": day}])
    return True


async def note_study_day(
    session: AsyncSession, profile: Profile, day: date, study: set[date], excused: set[date]
) -> bool:
    """What ``record_study_day`` decides, without writing the day: False when ``day`` is in ``study``
    already, else it is added there, the profile's streak recomputed and ``student.streak_updated`` said.
    ``study`` and ``excused``: all the student's days, read under the profile's lock."""
    if day in study:
        return False
    before = compute(study, excused, max([day, *study])).freezes_used if study else 0
    study.add(day)
    await _recompute(session, profile, study, excused, day, before)
    return True


_INSERT_DAYS = insert(_STUDY).on_conflict_do_nothing()  # built once; one parameter set per day


async def insert_study_days(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Write study days ``note_study_day`` decided (for one student or many: one statement)."""
    await session.execute(_INSERT_DAYS, list(rows))


async def record_excused_day(session: AsyncSession, profile: Profile, at: datetime) -> None:
    """A day whose lesson the tutor cancelled: it does not break the streak."""
    await session.execute(
        insert(ExcusedDay).values(student_id=profile.student_id, day=local_day(profile, at)).on_conflict_do_nothing()
    )
