"""A student's study plan: an ordered list of topics, handed out to their scheduled lessons in order.

``reflow`` runs after every change to the plan or to the student's lessons with the tutor: the
topics not yet covered (by a completed lesson) go, in order, to the scheduled lessons that follow
the plan (not those with a topic the tutor typed). So a cancelled or missed lesson's topic moves to
the next lesson: no topic is lost or skipped, and no lesson is deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Text, Uuid, bindparam, cast, delete, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.lesson_service.models import Lesson, StudyPlanTopic
from shared.db import DriverStatement, first_time_in_transaction, row_snapshot


async def topics(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID) -> list[StudyPlanTopic]:
    return list(await session.scalars(_PLAN_OF_PAIR, {"tutor_id": tutor_id, "student_id": student_id}))


async def replace_plan(
    session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID, titles: Sequence[str]
) -> list[StudyPlanTopic]:
    """The plan becomes ``titles``; a topic whose title stays keeps its identity (and what it covered)."""
    await lock_pair(session, tutor_id, student_id)  # before it changes any of the pair's lessons
    existing = {topic.title: topic for topic in await topics(session, tutor_id, student_id)}
    kept: list[StudyPlanTopic] = []
    for position, title in enumerate(titles):
        topic = existing.pop(title, None)
        if topic is None:
            topic = StudyPlanTopic(id=uuid.uuid4(), tutor_id=tutor_id, student_id=student_id, title=title)
            session.add(topic)
        topic.position = position
        kept.append(topic)
    if existing:
        gone = [topic.id for topic in existing.values()]
        for lesson in await session.scalars(select(Lesson).where(Lesson.plan_topic_id.in_(gone))):
            lesson.plan_topic_id = None
            if lesson.status == "scheduled":
                lesson.topic = None
        await session.flush()
        await session.execute(delete(StudyPlanTopic).where(StudyPlanTopic.id.in_(gone)))
    await session.flush()
    await reflow(session, tutor_id, student_id)
    return kept


async def lock_pair(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID) -> None:
    """Hold the tutor–student pair's lock until the transaction ends (re-entrant within it).

    A reflow locks all of the pair's lessons, so a request that already holds one of them (a cancel,
    an edit) and a concurrent one holding another would each wait for the other's row: a deadlock.
    Taking this lock before any lesson row of the pair (``lessons.lock_lesson`` and
    ``reflow`` do) makes changes of one pair take turns instead.
    """
    if first_time_in_transaction(session, _held(tutor_id, student_id)):  # held already: no second round trip
        await session.execute(_LOCK_PAIR, {"tutor_id": tutor_id, "student_id": student_id})


async def lock_lesson_and_its_pair(session: AsyncSession, lesson_id: uuid.UUID) -> Lesson | None:
    """The lesson locked for update after its pair's :func:`lock_pair`, in one statement; None when there
    is no such lesson. PostgreSQL computes the select list (the pair's lock) in the scan, below the row
    lock, so the order of :func:`lock_pair` holds."""
    row = (await session.execute(_LESSON_AFTER_ITS_PAIR, {"lesson_id": lesson_id})).first()
    return None if row is None else _pair_held(session, row[0])


async def lock_lesson_snapshot_and_its_pair(session: AsyncSession, lesson_id: uuid.UUID) -> Lesson | None:
    """:func:`lock_lesson_and_its_pair` on the driver's connection: the lesson as a snapshot no session
    tracks (``shared.db.row_snapshot``), for a change made with a statement of its own (completing)."""
    row = await _LESSON_AFTER_ITS_PAIR_ON_DRIVER.fetchrow(session, lesson_id=lesson_id)
    return None if row is None else _pair_held(session, row_snapshot(Lesson, row))


def _pair_held(session: AsyncSession, lesson: Lesson) -> Lesson:
    first_time_in_transaction(session, _held(lesson.tutor_id, lesson.student_id))  # remembered: reflow needs it
    return lesson


def has_plan(tutor_id: ColumnElement[uuid.UUID], student_id: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """Whether the pair has a study plan (a change of its lessons needs a :func:`reflow` only then)."""
    return exists().where(StudyPlanTopic.tutor_id == tutor_id, StudyPlanTopic.student_id == student_id)


def _pair_lock(tutor_id: ColumnElement[uuid.UUID], student_id: ColumnElement[uuid.UUID]) -> ColumnElement[Any]:
    """The pair's transaction-level advisory lock, keyed by ``lessons:<tutor>:<student>``: one expression,
    whether the pair is given or read from a lesson's row, so both take the same lock."""
    key = literal("lessons:") + cast(tutor_id, Text) + literal(":") + cast(student_id, Text)
    return func.pg_advisory_xact_lock(func.hashtextextended(key, 0))


def _held(tutor_id: uuid.UUID, student_id: uuid.UUID) -> tuple[str, uuid.UUID, uuid.UUID]:
    return ("lessons advisory lock", tutor_id, student_id)


# built once: the hot path (completing a lesson) runs them on every request, and building a statement
# costs more CPU than sending it
_LOCK_PAIR = select(_pair_lock(bindparam("tutor_id", type_=Uuid()), bindparam("student_id", type_=Uuid())))
_LESSON_AFTER_ITS_PAIR = (
    select(Lesson, _pair_lock(Lesson.tutor_id, Lesson.student_id))
    .where(Lesson.id == bindparam("lesson_id", type_=Uuid()))
    .with_for_update(of=Lesson)
)
_LESSON_AFTER_ITS_PAIR_ON_DRIVER = DriverStatement(_LESSON_AFTER_ITS_PAIR)
_PLAN_OF_PAIR = (
    select(StudyPlanTopic)
    .where(
        StudyPlanTopic.tutor_id == bindparam("tutor_id", type_=Uuid()),
        StudyPlanTopic.student_id == bindparam("student_id", type_=Uuid()),
    )
    .order_by(StudyPlanTopic.position)
)
_PLAN_TOPICS_OF_PAIR = DriverStatement(_PLAN_OF_PAIR.with_only_columns(StudyPlanTopic.id, StudyPlanTopic.title))


async def reflow(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID) -> None:
    await lock_pair(session, tutor_id, student_id)
    # on the driver's connection: completing a lesson reflows, and most pairs have no plan
    plan = await _PLAN_TOPICS_OF_PAIR.fetch(session, tutor_id=tutor_id, student_id=student_id)
    if not plan:
        return
    lessons = list(
        await session.scalars(
            select(Lesson)
            .where(Lesson.tutor_id == tutor_id, Lesson.student_id == student_id, Lesson.status != "cancelled")
            .order_by(Lesson.starts_at, Lesson.id)
            .with_for_update()
        )
    )
    covered = {lesson.plan_topic_id for lesson in lessons if lesson.status == "completed"}
    pending = iter([(topic["id"], topic["title"]) for topic in plan if topic["id"] not in covered])
    for lesson in lessons:
        if lesson.status != "scheduled":
            continue
        follows_plan = lesson.plan_topic_id is not None or lesson.topic is None
        if not follows_plan:
            continue
        new_id, new_title = next(pending, (None, None))
        if (lesson.plan_topic_id, lesson.topic) != (new_id, new_title):
            lesson.plan_topic_id, lesson.topic = new_id, new_title
            reflowed(session)[lesson.id] = lesson
    await session.flush()


def reflowed(session: AsyncSession) -> dict[uuid.UUID, Lesson]:
    """Scheduled lessons whose topic a reflow changed in this transaction (the request announces them)."""
    return session.info.setdefault("reflowed_lessons", {})
