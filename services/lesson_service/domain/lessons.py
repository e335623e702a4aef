"""Lesson rules as plain functions (no HTTP): scheduling without double booking, editing, cancelling
(who, why, chargeable or not), completing, no-shows, and recurring series."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from dateutil.rrule import WEEKLY, rrule, weekdays
from sqlalchemy import Text, Uuid, and_, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.lesson_service.domain import plans
from services.lesson_service.models import OVERLAP_CONSTRAINT, Lesson, LessonSeries, UserProfile
from shared.db import DriverStatement, row_snapshot
from shared.errors import Conflict, NotFound, Unprocessable

EXCLUSION_VIOLATION = "23P01"  # PostgreSQL's SQLSTATE for a broken EXCLUDE constraint
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class LessonDraft:
    """What a tutor fills in for a lesson (one, or every lesson of a series)."""

    student_id: uuid.UUID
    starts_at: datetime
    duration_minutes: int
    subject: str
    topic: str | None = None
    lesson_type: str = "regular"
    price: int | None = None
    currency: str | None = None
    online_url: str | None = None
    place: str | None = None


# --- time zones ------------------------------------------------------------------------------


async def timezone_of(session: AsyncSession, user_id: uuid.UUID | str, default: str) -> ZoneInfo:
    """The user's IANA zone from the local copy of user.* events, else ``default``."""
    try:
        key = uuid.UUID(str(user_id))
    except ValueError:
        return ZoneInfo(default)
    name = await session.scalar(select(UserProfile.timezone).where(UserProfile.user_id == key))
    try:
        return ZoneInfo(name or default)
    except (ValueError, KeyError):
        return ZoneInfo(default)


# --- no double booking -------------------------------------------------------------------------


async def _conflicting_lesson(
    session: AsyncSession, tutor_id: uuid.UUID, starts_at: datetime, ends_at: datetime, exclude: Sequence[uuid.UUID]
) -> Lesson | None:
    statement = (
        select(Lesson)
        .where(
            Lesson.tutor_id == tutor_id,
            Lesson.status != "cancelled",
            func.tstzrange(Lesson.starts_at, Lesson.ends_at, "[)").op("&&")(func.tstzrange(starts_at, ends_at, "[)")),
        )
        .order_by(Lesson.starts_at)
        .limit(1)
    )
    if exclude:
        statement = statement.where(Lesson.id.not_in(list(exclude)))
    return await session.scalar(statement)


async def save_without_overlap(
    session: AsyncSession, lessons: Sequence[Lesson], change: Callable[[], None] | None = None
) -> None:
    """Apply ``change`` (if any) and flush ``lessons``; an overlap is refused by the database (409 naming
    the lesson in the way).

    All of it runs in a savepoint, so the request's transaction survives the refusal (``begin_nested``
    first flushes what is pending, so the change is made inside it). Two concurrent requests for
    overlapping slots: the second waits on the first's row, then breaks the constraint.
    """
    wanted: list[tuple[uuid.UUID, uuid.UUID, datetime, datetime]] = []
    try:
        async with session.begin_nested():
            group = len(lessons) > 1
            if group:  # rows are written one by one: check the finished group, not each step
                await session.execute(text(f"SET CONSTRAINTS {OVERLAP_CONSTRAINT} DEFERRED"))
            if change is not None:
                change()
            session.add_all(lessons)
            wanted = [(x.id, x.tutor_id, x.starts_at, x.ends_at) for x in lessons]
            await session.flush()
            if group:
                await session.execute(text(f"SET CONSTRAINTS {OVERLAP_CONSTRAINT} IMMEDIATE"))
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != EXCLUSION_VIOLATION:
            raise
        ours = [lesson_id for lesson_id, *_ in wanted]
        for _, tutor_id, starts_at, ends_at in wanted:
            other = await _conflicting_lesson(session, tutor_id, starts_at, ends_at, ours)
            if other is not None:
                raise _overlap(other, starts_at) from None
        raise Conflict("The lesson overlaps another lesson of the tutor", code="lesson_overlap") from None


def _overlap(other: Lesson, requested_start: datetime) -> Conflict:
    return Conflict(
        f"The tutor already has a lesson from {other.starts_at.isoformat()} to {other.ends_at.isoformat()}",
        code="lesson_overlap",
        details={
            "conflicting_lesson_id": str(other.id),
            "conflicting_starts_at": other.starts_at.isoformat(),
            "conflicting_ends_at": other.ends_at.isoformat(),
            "requested_starts_at": requested_start.isoformat(),
        },
    )


# --- scheduling ---------------------------------------------------------------------------------


def new_lesson(tutor_id: uuid.UUID, draft: LessonDraft, *, series_id: uuid.UUID | None = None) -> Lesson:
    starts_at = draft.starts_at.astimezone(UTC)
    return Lesson(
        id=uuid.uuid4(),
        tutor_id=tutor_id,
        student_id=draft.student_id,
        series_id=series_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=draft.duration_minutes),
        subject=draft.subject,
        topic=draft.topic,
        lesson_type=draft.lesson_type,
        price=draft.price,
        currency=draft.currency if draft.price is not None else None,
        online_url=draft.online_url,
        place=draft.place,
        status="scheduled",
        chargeable=True,
        skills=[],
    )


async def schedule(session: AsyncSession, tutor_id: uuid.UUID, draft: LessonDraft) -> Lesson:
    lesson = new_lesson(tutor_id, draft)
    await save_without_overlap(session, [lesson])
    await plans.reflow(session, tutor_id, draft.student_id)
    return lesson


def series_occurrences(
    first_start: datetime,
    zone: ZoneInfo,
    weekday_codes: Sequence[str],
    *,
    until: date | None,
    count: int | None,
    limit: int,
) -> list[datetime]:
    """Weekly starts (UTC) at the first lesson's wall-clock time in ``zone``, on the chosen days.

    The wall-clock time is kept across DST changes (a 17:00 lesson stays at 17:00 local).
    """
    if (until is None) == (count is None):
        raise Unprocessable(
            "Give either until or count",
            details=[{"field": "until", "message": "exactly one of until, count", "type": "value_error"}],
        )
    local_start = first_start.astimezone(zone).replace(tzinfo=None)
    days = [weekdays[WEEKDAY_CODES.index(code)] for code in dict.fromkeys(weekday_codes)]
    rule_until = datetime.combine(until, time.max) if until is not None else None
    if count is not None and count > limit:
        raise _too_many(limit)
    rule = rrule(WEEKLY, dtstart=local_start, byweekday=days, until=rule_until, count=count)
    starts: list[datetime] = []
    for local in rule:
        if len(starts) == limit:
            raise _too_many(limit)
        starts.append(local.replace(tzinfo=zone).astimezone(UTC))
    if not starts:
        raise Unprocessable(
            "The series has no lessons", details=[{"field": "until", "message": "before the first lesson"}]
        )
    return starts


def _too_many(limit: int) -> Unprocessable:
    return Unprocessable(
        f"A series may have at most {limit} lessons",
        details=[{"field": "until", "message": f"more than {limit} lessons", "type": "value_error"}],
    )


def series_rule(weekday_codes: Sequence[str], until: date | None, count: int | None) -> str:
    parts = ["FREQ=WEEKLY", "BYDAY=" + ",".join(dict.fromkeys(weekday_codes))]
    if until is not None:
        parts.append(f"UNTIL={until:%Y%m%d}")
    if count is not None:
        parts.append(f"COUNT={count}")
    return ";".join(parts)


async def schedule_series(
    session: AsyncSession,
    tutor_id: uuid.UUID,
    draft: LessonDraft,
    *,
    zone: ZoneInfo,
    weekday_codes: Sequence[str],
    until: date | None,
    count: int | None,
    limit: int,
) -> tuple[LessonSeries, list[Lesson]]:
    """A weekly series, all its lessons at once (all or none: one overlap refuses the series)."""
    starts = series_occurrences(draft.starts_at, zone, weekday_codes, until=until, count=count, limit=limit)
    series = LessonSeries(
        id=uuid.uuid4(),
        tutor_id=tutor_id,
        student_id=draft.student_id,
        rule=series_rule(weekday_codes, until, count),
        timezone=zone.key,
    )
    session.add(series)
    lessons = [new_lesson(tutor_id, _at(draft, start), series_id=series.id) for start in starts]
    await save_without_overlap(session, lessons)
    await plans.reflow(session, tutor_id, draft.student_id)
    return series, lessons


def _at(draft: LessonDraft, starts_at: datetime) -> LessonDraft:
    return LessonDraft(**{**draft.__dict__, "starts_at": starts_at})


# --- finding lessons ------------------------------------------------------------------------------


async def lock_lesson(session: AsyncSession, lesson_id: uuid.UUID) -> Lesson:
    """The lesson, locked for the request's change after its tutor–student pair (``plans.lock_pair``)."""
    return _found(await plans.lock_lesson_and_its_pair(session, lesson_id))


async def lock_lesson_snapshot(session: AsyncSession, lesson_id: uuid.UUID) -> Lesson:
    """:func:`lock_lesson`, as a snapshot no session tracks: for :func:`complete`."""
    return _found(await plans.lock_lesson_snapshot_and_its_pair(session, lesson_id))


def _found(lesson: Lesson | None) -> Lesson:
    if lesson is None:
        raise NotFound("Lesson not found")
    return lesson


async def scope_lessons(session: AsyncSession, lesson: Lesson, scope: str) -> list[Lesson]:
    """``this``: the lesson; ``following``: it and its series' later lessons still scheduled."""
    if scope == "this" or lesson.series_id is None:
        return [lesson]
    rows = await session.scalars(
        select(Lesson)
        .where(
            Lesson.series_id == lesson.series_id,
            Lesson.status == "scheduled",
            Lesson.starts_at >= lesson.starts_at,
            Lesson.id != lesson.id,
        )
        .order_by(Lesson.starts_at)
        .with_for_update()
    )
    return [lesson, *rows]


def require_status(lesson: Lesson, *allowed: str, action: str) -> None:
    if lesson.status not in allowed:
        raise Conflict(
            f"A {lesson.status} lesson cannot be {action}",
            code=f"lesson_{lesson.status}",
            details={"lesson_id": str(lesson.id), "status": lesson.status},
        )


# --- changing ---------------------------------------------------------------------------------------


async def edit(
    session: AsyncSession,
    lesson: Lesson,
    changes: dict[str, Any],
    *,
    scope: str,
    zone: ZoneInfo,
) -> list[tuple[Lesson, datetime, datetime]]:
    """Apply ``changes`` to the lesson (or it and the following ones); returns (lesson, old start, old end).

    A new start moves the following lessons by the same wall-clock shift in ``zone``.
    """
    require_status(lesson, "scheduled", action="changed")
    group = await scope_lessons(session, lesson, scope)
    shift: timedelta | None = None
    if "starts_at" in changes and changes["starts_at"] is not None:
        new_local = changes["starts_at"].astimezone(zone).replace(tzinfo=None)
        shift = new_local - lesson.starts_at.astimezone(zone).replace(tzinfo=None)
    previous = [(item, item.starts_at, item.ends_at) for item in group]

    def change() -> None:
        for item in group:
            duration = timedelta(minutes=changes.get("duration_minutes") or item.duration_minutes)
            if shift is not None:
                local = item.starts_at.astimezone(zone).replace(tzinfo=None) + shift
                item.starts_at = local.replace(tzinfo=zone).astimezone(UTC)
            item.ends_at = item.starts_at + duration
            for field in ("subject", "lesson_type", "online_url", "place"):
                if field in changes:
                    setattr(item, field, changes[field])
            if "topic" in changes:  # a typed topic replaces the plan's
                item.topic, item.plan_topic_id = changes["topic"], None
            if "price" in changes:
                item.price = changes["price"]
                item.currency = (changes.get("currency") or item.currency or "RUB") if item.price is not None else None

    await save_without_overlap(session, group, change)
    await plans.reflow(session, lesson.tutor_id, lesson.student_id)
    return previous


def is_late(lesson: Lesson, now: datetime, window: timedelta) -> bool:
    return lesson.starts_at - now < window


async def cancel(
    session: AsyncSession,
    lesson: Lesson,
    *,
    by: uuid.UUID,
    role: str,
    reason: str | None,
    chargeable: bool | None,
    scope: str,
    now: datetime,
    late_window: timedelta,
) -> list[Lesson]:
    """Cancel; the lesson stays (status ``cancelled``) and frees its slot and its plan topic.

    The tutor decides: excused (free, the default) or not (``chargeable``). A student's or parent's
    cancellation inside the late window is chargeable; the tutor may excuse it afterwards.
    """
    require_status(lesson, "scheduled", action="cancelled")
    if role not in ("tutor", "admin") and lesson.starts_at <= now:
        raise Conflict(
            "A lesson that has started can no longer be cancelled; ask the tutor",
            code="lesson_started",
            details={"lesson_id": str(lesson.id)},
        )
    group = await scope_lessons(session, lesson, scope)
    for item in group:
        if role in ("tutor", "admin"):
            item.chargeable = bool(chargeable)
        else:
            item.chargeable = is_late(item, now, late_window)
        item.status = "cancelled"
        item.cancelled_at = now
        item.cancelled_by = by
        item.cancelled_by_role = role
        item.cancel_reason = reason
        item.plan_topic_id = None  # its topic goes to the next lesson
    await session.flush()
    await plans.reflow(session, lesson.tutor_id, lesson.student_id)
    return group


async def excuse(lesson: Lesson, *, by: uuid.UUID) -> None:
    if lesson.status != "cancelled":
        raise Conflict("Only a cancelled lesson can be excused", code=f"lesson_{lesson.status}")
    if not lesson.chargeable:
        raise Conflict("This cancellation is already free of charge", code="already_excused")
    lesson.chargeable = False
    lesson.excused_by = by


async def complete(
    session: AsyncSession,
    lesson: Lesson,
    *,
    now: datetime,
    attendance: str,
    grade: int | None,
    topic: str | None,
    mastery: str | None,
    mastery_comment: str | None,
    skills: list[str],
    notes: str | None,
) -> Lesson:
    """Complete ``lesson`` (a snapshot locked by :func:`lock_lesson_snapshot`); returns the completed lesson,
    a snapshot too. One UPDATE on the driver's connection: completing is the event path's producer, and
    through the ORM's unit of work it cost twice the CPU (docs/performance.md, the event path)."""
    require_status(lesson, "scheduled", action="completed")
    row = await _COMPLETE.fetchrow(
        session,
        lesson_id=lesson.id,
        completed_at=now,
        attendance=attendance,
        grade=grade,
        topic=topic,
        mastery=mastery,
        mastery_comment=mastery_comment,
        skills=orjson.dumps(list(skills)).decode(),
        notes=notes,
    )
    assert row is not None, "the lesson is locked by this transaction"
    if row["has_plan"]:  # read under the pair's lock, which a change of the plan takes too
        await plans.reflow(session, lesson.tutor_id, lesson.student_id)
    return row_snapshot(Lesson, row)


_COMPLETE = DriverStatement(
    update(Lesson)
    .where(Lesson.id == bindparam("lesson_id", type_=Uuid()))
    .values(
        status="completed",
        completed_at=bindparam("completed_at"),
        attendance=bindparam("attendance"),
        grade=bindparam("grade"),
        topic=func.coalesce(bindparam("topic", type_=Text()), Lesson.topic),  # no topic given: it keeps its own
        mastery=bindparam("mastery"),
        mastery_comment=bindparam("mastery_comment"),
        skills=bindparam("skills"),
        notes=bindparam("notes"),
        chargeable=True,
        updated_at=func.now(),
    )
    .returning(*Lesson.__table__.columns, plans.has_plan(Lesson.tutor_id, Lesson.student_id).label("has_plan"))
)


async def mark_missed(session: AsyncSession, lesson: Lesson, *, now: datetime, reason: str | None) -> None:
    """A no-show: chargeable; the topic was not covered and goes to the next lesson."""
    require_status(lesson, "scheduled", action="marked missed")
    lesson.status = "missed"
    lesson.completed_at = now
    lesson.attendance = "absent"
    lesson.missed_reason = reason
    lesson.chargeable = True
    lesson.plan_topic_id = None
    await session.flush()
    await plans.reflow(session, lesson.tutor_id, lesson.student_id)


# --- reading ------------------------------------------------------------------------------------------


def in_range(statement: Any, start: datetime | None, end: datetime | None) -> Any:
    """Lessons that overlap [start, end)."""
    conditions = []
    if start is not None:
        conditions.append(Lesson.ends_at > start)
    if end is not None:
        conditions.append(Lesson.starts_at < end)
    return statement.where(and_(*conditions)) if conditions else statement
