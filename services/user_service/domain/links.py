"""Tutor–student and parent–student links, and who may see whom (DESIGN.md §4).

A tutor sees their students and those students' parents, a parent their
children, everyone themselves; an admin or a service account sees everyone.
Anyone else is told the user does not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, exists, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from services.user_service import events
from services.user_service.models import StudentLink, User
from shared.errors import Conflict, NotFound
from shared.events.outbox import add_event

MAX_PARENTS_PER_STUDENT = 2
SEES_EVERYONE = frozenset({"admin", "service"})


def _active(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(StudentLink.unlinked_at.is_(None), *conditions)


async def active_link(session: AsyncSession, principal_id: uuid.UUID, student_id: uuid.UUID) -> StudentLink | None:
    return await session.scalar(
        select(StudentLink).where(
            _active(StudentLink.principal_id == principal_id, StudentLink.student_id == student_id)
        )
    )


async def is_tutors_student(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID) -> bool:
    link = await active_link(session, tutor_id, student_id)
    return link is not None and link.relation == "tutor"


async def link_student(
    session: AsyncSession,
    *,
    principal_id: uuid.UUID,
    student_id: uuid.UUID,
    relation: str,
    tutor_id: uuid.UUID,
    now: datetime,
) -> StudentLink | None:
    """Link a tutor or a parent to a student and announce it; None when the link already exists."""
    if relation == "parent":
        # Lock the student so two parents redeeming at once cannot both be the second.
        await session.execute(select(User.id).where(User.id == student_id).with_for_update())
    if await active_link(session, principal_id, student_id) is not None:
        return None
    if relation == "parent" and await _parent_count(session, student_id) >= MAX_PARENTS_PER_STUDENT:
        raise Conflict(f"This student already has {MAX_PARENTS_PER_STUDENT} parents linked", code="too_many_parents")
    link = StudentLink(principal_id=principal_id, student_id=student_id, relation=relation, tutor_id=tutor_id)
    session.add(link)
    await session.flush()
    await add_event(session, events.student_linked(link), occurred_at=now)
    return link


async def unlink_student(session: AsyncSession, *, tutor_id: uuid.UUID, student_id: uuid.UUID, now: datetime) -> None:
    """The tutor lets a student go; from now on the tutor gets 404 for them."""
    link = await session.scalar(
        select(StudentLink)
        .where(
            _active(
                StudentLink.principal_id == tutor_id,
                StudentLink.student_id == student_id,
                StudentLink.relation == "tutor",
            )
        )
        .with_for_update()
    )
    if link is None:
        raise NotFound("No such student")
    link.unlinked_at = now
    await add_event(session, events.student_unlinked(link), occurred_at=now)


async def can_see(
    session: AsyncSession, *, viewer_id: uuid.UUID | None, viewer_role: str, target_id: uuid.UUID
) -> bool:
    if viewer_role in SEES_EVERYONE or viewer_id == target_id:
        return True
    if viewer_id is None:
        return False
    if viewer_role == "tutor":
        own_student = _active(
            StudentLink.principal_id == viewer_id,
            StudentLink.student_id == target_id,
            StudentLink.relation == "tutor",
        )
        tutor_link = aliased(StudentLink)
        parent_of_own_student = _active(
            StudentLink.principal_id == target_id,
            StudentLink.relation == "parent",
            exists().where(
                tutor_link.principal_id == viewer_id,
                tutor_link.student_id == StudentLink.student_id,
                tutor_link.relation == "tutor",
                tutor_link.unlinked_at.is_(None),
            ),
        )
        condition = own_student | parent_of_own_student
    elif viewer_role == "parent":
        condition = _active(
            StudentLink.principal_id == viewer_id,
            StudentLink.student_id == target_id,
            StudentLink.relation == "parent",
        )
    else:  # a student sees only themselves
        return False
    return bool(await session.scalar(select(exists().where(condition))))


async def list_students(
    session: AsyncSession, *, tutor_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[tuple[User, StudentLink]]:
    """The tutor's active students in the order they joined, ``limit`` after the keyset position ``after``."""
    query = (
        select(User, StudentLink)
        .join(StudentLink, StudentLink.student_id == User.id)
        .where(_active(StudentLink.principal_id == tutor_id, StudentLink.relation == "tutor"))
        .order_by(StudentLink.created_at, StudentLink.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(StudentLink.created_at, StudentLink.id) > tuple_(*after))
    return [(user, link) for user, link in (await session.execute(query)).all()]


async def _parent_count(session: AsyncSession, student_id: uuid.UUID) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(StudentLink)
            .where(_active(StudentLink.student_id == student_id, StudentLink.relation == "parent"))
        )
        or 0
    )


async def contacts(session: AsyncSession, *, person_id: uuid.UUID, role: str) -> list[tuple[User, str, uuid.UUID]]:
    """The people linked to a person, each as (user, relation to the person, the student the link is about).

    A tutor: their students (``student``) and those students' parents (``parent``); a student: their
    tutors and parents (``tutor``, ``parent``); a parent: their children (``child``) and the children's
    tutors (``tutor``). Others: nobody. Clients (the bot) use it to reach a student's tutor and a
    tutor's students and parents.
    """
    if role not in ("tutor", "student", "parent"):
        return []
    if role == "student":  # up: everyone linked to the student
        query = (
            select(User, StudentLink.relation, StudentLink.student_id)
            .join(StudentLink, StudentLink.principal_id == User.id)
            .where(_active(StudentLink.student_id == person_id))
            .order_by(StudentLink.created_at, StudentLink.id)
        )
        return [(user, relation, student) for user, relation, student in (await session.execute(query)).all()]
    own = "tutor" if role == "tutor" else "parent"
    down = (
        select(User, literal("student" if role == "tutor" else "child"), StudentLink.student_id)
        .join(StudentLink, StudentLink.student_id == User.id)
        .where(_active(StudentLink.principal_id == person_id, StudentLink.relation == own))
        .order_by(StudentLink.created_at, StudentLink.id)
    )
    mine = aliased(StudentLink)
    other = "parent" if role == "tutor" else "tutor"
    sideways = (
        select(User, literal(other), StudentLink.student_id)
        .join(StudentLink, StudentLink.principal_id == User.id)
        .where(
            _active(StudentLink.relation == other),
            exists().where(
                mine.principal_id == person_id,
                mine.student_id == StudentLink.student_id,
                mine.relation == own,
                mine.unlinked_at.is_(None),
            ),
        )
        .order_by(StudentLink.created_at, StudentLink.id)
    )
    rows = [*(await session.execute(down)).all(), *(await session.execute(sideways)).all()]
    return [(user, relation, student) for user, relation, student in rows]
