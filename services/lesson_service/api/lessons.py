"""/api/v1/lessons: schedule (one or a weekly series), list and views, edit, cancel, complete, no-show."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, status
from sqlalchemy import select, tuple_

from services.lesson_service.api.deps import Settings, VisibleLesson, VisibleLessonSnapshot
from services.lesson_service.api.schemas import (
    CancelIn,
    CompleteIn,
    DayOut,
    LessonIn,
    LessonOut,
    LessonPatch,
    LocalLessonOut,
    MissedIn,
    ScheduleOut,
    SeriesIn,
    SeriesOut,
)
from services.lesson_service.domain import lessons
from services.lesson_service.events import (
    announce_reflowed,
    lesson_cancelled,
    lesson_completed,
    lesson_missed,
    lesson_rescheduled,
    lesson_scheduled,
)
from services.lesson_service.models import Lesson
from shared.auth.access import StudentAccessDep
from shared.auth.deps import Caller, Person, TutorId, user_id_of
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import Unprocessable
from shared.events.outbox import add_event
from shared.idempotency import IdempotentRoute
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.tables import access_links

# POSTs honour Idempotency-Key: a completion or cancellation the bot queued offline is applied once
router = APIRouter(prefix="/api/v1/lessons", tags=["lessons"], route_class=IdempotentRoute)


def _zone_or_422(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        raise Unprocessable(
            "Unknown time zone", details=[{"field": "timezone", "message": "not an IANA zone", "type": "value_error"}]
        ) from None


@router.post("", status_code=status.HTTP_201_CREATED)
async def schedule_lesson(
    body: LessonIn, tutor_id: TutorId, access: StudentAccessDep, session: SessionDep
) -> LessonOut:
    """Schedule a lesson (or record one already held: a start in the past). Overlap → 409."""
    await access.ensure(body.student_id)
    lesson = await lessons.schedule(session, tutor_id, body.draft())
    await add_event(session, lesson_scheduled(lesson))
    await announce_reflowed(session, lesson.id)
    return LessonOut.of(lesson)


@router.post("/series", status_code=status.HTTP_201_CREATED)
async def schedule_series(
    body: SeriesIn, tutor_id: TutorId, access: StudentAccessDep, session: SessionDep, settings: Settings
) -> SeriesOut:
    """Weekly lessons on the chosen days, at the first lesson's wall-clock time, until a date or for N lessons."""
    await access.ensure(body.student_id)
    zone = (
        _zone_or_422(body.timezone)
        if body.timezone
        else await lessons.timezone_of(session, tutor_id, settings.default_timezone)
    )
    series, created = await lessons.schedule_series(
        session,
        tutor_id,
        body.draft(),
        zone=zone,
        weekday_codes=body.weekdays,
        until=body.until,
        count=body.count,
        limit=settings.max_series_lessons,
    )
    for lesson in created:
        await add_event(session, lesson_scheduled(lesson))
    await announce_reflowed(session, *(x.id for x in created))
    return SeriesOut(
        id=series.id, rule=series.rule, timezone=series.timezone, lessons=[LessonOut.of(x) for x in created]
    )


async def _visible_statement(caller: Caller, access: StudentAccessDep, student_id: uuid.UUID | None):  # type: ignore[no-untyped-def]
    """Lessons the caller may list: a tutor's own, a student's own, a parent's children's, an admin's all."""
    statement = select(Lesson)
    if student_id is not None:
        await access.ensure(student_id)
        statement = statement.where(Lesson.student_id == student_id)
    if caller.role == "tutor":
        statement = statement.where(Lesson.tutor_id == user_id_of(caller))
    elif caller.role == "student":
        statement = statement.where(Lesson.student_id == user_id_of(caller))
    elif caller.role == "parent":
        children = select(access_links.c.student_id).where(
            access_links.c.principal_id == user_id_of(caller),
            access_links.c.relation == "parent",
            access_links.c.active == 1,
        )
        statement = statement.where(Lesson.student_id.in_(children))
    return statement


@router.get("")
async def list_lessons(
    caller: Person,
    access: StudentAccessDep,
    session: SessionDep,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    student_id: uuid.UUID | None = None,
    status_: Annotated[Literal["scheduled", "completed", "cancelled", "missed"] | None, Query(alias="status")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[LessonOut]:
    """The caller's lessons that overlap [from, to), by start time."""
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise Unprocessable(f"{name} needs a UTC offset", details=[{"field": name, "message": "naive time"}])
    statement = lessons.in_range(await _visible_statement(caller, access, student_id), from_, to)
    if status_ is not None:
        statement = statement.where(Lesson.status == status_)
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(tuple_(Lesson.starts_at, Lesson.id) > tuple_(*after))
    rows = list(await session.scalars(statement.order_by(Lesson.starts_at, Lesson.id).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    return Page[LessonOut](
        items=[LessonOut.of(x) for x in page],
        next_cursor=encode_cursor(page[-1].starts_at, page[-1].id) if more else None,
    )


@router.get("/schedule")
async def schedule_view(
    caller: Person,
    access: StudentAccessDep,
    session: SessionDep,
    settings: Settings,
    now: Now,
    view: Literal["day", "week"] = "week",
    on: Annotated[date | None, Query(alias="date", description="a day in the caller's zone; default today")] = None,
    student_id: uuid.UUID | None = None,
) -> ScheduleOut:
    """A day or a week (Monday first) of the caller's lessons, in the caller's own time zone."""
    zone = await lessons.timezone_of(session, caller.id, settings.default_timezone)
    day = on or now.astimezone(zone).date()
    first = day - timedelta(days=day.weekday()) if view == "week" else day
    days = [first + timedelta(days=i) for i in range(7 if view == "week" else 1)]
    start = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    statement = lessons.in_range(await _visible_statement(caller, access, student_id), start, end)
    rows = list(await session.scalars(statement.order_by(Lesson.starts_at, Lesson.id)))
    by_day: dict[date, list[LocalLessonOut]] = {d: [] for d in days}
    for lesson in rows:
        local_start = lesson.starts_at.astimezone(zone)
        item = LocalLessonOut(
            **LessonOut.of(lesson).model_dump(),
            local_starts_at=local_start,
            local_ends_at=lesson.ends_at.astimezone(zone),
        )
        by_day.setdefault(local_start.date(), []).append(item)
    return ScheduleOut(
        view=view,
        timezone=zone.key,
        starts_at=start,
        ends_at=end,
        days=[DayOut(date=d, lessons=by_day[d]) for d in days],
    )


@router.get("/{lesson_id}")
async def read_lesson(seen: VisibleLesson) -> LessonOut:
    return LessonOut.of(seen.lesson)


@router.patch("/{lesson_id}")
async def edit_lesson(body: LessonPatch, seen: VisibleLesson, session: SessionDep, settings: Settings) -> LessonOut:
    """Reschedule or change one lesson, or (``scope=following``) it and the series' later ones."""
    lesson = seen.require_tutor()
    changes = body.model_dump(exclude_unset=True, exclude={"scope"})
    for required in ("starts_at", "duration_minutes", "subject", "lesson_type"):
        if required in changes and changes[required] is None:
            raise Unprocessable(f"{required} cannot be null", details=[{"field": required, "message": "required"}])
    zone = await lessons.timezone_of(session, lesson.tutor_id, settings.default_timezone)
    changed = await lessons.edit(session, lesson, changes, scope=body.scope, zone=zone)
    for item, previous_start, previous_end in changed:
        await add_event(
            session, lesson_rescheduled(item, previous_starts_at=previous_start, previous_ends_at=previous_end)
        )
    await announce_reflowed(session, *(item.id for item, _, _ in changed))
    return LessonOut.of(lesson)


@router.post("/{lesson_id}/cancel")
async def cancel_lesson(
    body: CancelIn, seen: VisibleLesson, session: SessionDep, settings: Settings, now: Now
) -> LessonOut:
    """Cancel (the lesson stays, cancelled). Tutor: excused unless ``chargeable``. Student or parent:
    chargeable inside the late window (LATE_CANCEL_WINDOW_HOURS) unless the tutor excuses it later."""
    lesson = seen.lesson
    role = seen.caller.role
    if role not in ("tutor", "student", "parent") or (role == "tutor" and not seen.is_its_tutor):
        seen.require_tutor()  # an admin or a service account (the bot's own token) sees it but cancels nothing
    if role != "tutor" and body.scope != "this":
        seen.require_tutor()  # only the tutor ends a whole series
    cancelled = await lessons.cancel(
        session,
        lesson,
        by=seen.caller_id,
        role=role,
        reason=body.reason,
        chargeable=body.chargeable,
        scope=body.scope,
        now=now,
        late_window=timedelta(hours=settings.late_cancel_window_hours),
    )
    for item in cancelled:
        await add_event(session, lesson_cancelled(item))
    await announce_reflowed(session)
    return LessonOut.of(lesson)


@router.post("/{lesson_id}/excuse")
async def excuse_cancellation(seen: VisibleLesson, session: SessionDep) -> LessonOut:
    """The tutor waives the charge of a chargeable cancellation; lesson.cancelled is sent again, chargeable false."""
    lesson = seen.require_tutor()
    await lessons.excuse(lesson, by=seen.caller_id)
    await session.flush()
    await add_event(session, lesson_cancelled(lesson))
    return LessonOut.of(lesson)


@router.post("/{lesson_id}/complete")
async def complete_lesson(body: CompleteIn, seen: VisibleLessonSnapshot, session: SessionDep, now: Now) -> LessonOut:
    """Attendance, grade 1–5, topic mastery with a comment, skills practised, notes. Twice → 409."""
    lesson = await lessons.complete(
        session,
        seen.require_tutor(),
        now=now,
        attendance=body.attendance,
        grade=body.grade,
        topic=body.topic,
        mastery=body.mastery,
        mastery_comment=body.mastery_comment,
        skills=body.skills,
        notes=body.notes,
    )
    await add_event(session, lesson_completed(lesson))
    await announce_reflowed(session)
    return LessonOut.of(lesson)


@router.post("/{lesson_id}/missed")
async def mark_missed(body: MissedIn, seen: VisibleLesson, session: SessionDep, now: Now) -> LessonOut:
    """A no-show: chargeable; the lesson's plan topic moves to the next lesson."""
    lesson = seen.require_tutor()
    await lessons.mark_missed(session, lesson, now=now, reason=body.reason)
    await add_event(session, lesson_missed(lesson))
    await announce_reflowed(session)
    return LessonOut.of(lesson)
