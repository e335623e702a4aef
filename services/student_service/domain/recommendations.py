"""Recommendations (DESIGN.md §6): each a rule, a pure function of the student's own data and ``now``
that answers a recommendation or nothing. ``load`` gathers the data from the database; ``recommend``
runs every rule and orders what fires by priority (1 is the most urgent).

The bot renders the text from ``code`` and ``params`` in the user's language; ``message`` is a short
English line for API users.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.domain import streaks
from services.student_service.domain.xp import level_for_xp, xp_for_level
from services.student_service.models import Homework, Material, MaterialShare, Profile, XpEntry

HOMEWORK_DUE_WITHIN = timedelta(hours=24)
NEAR_LEVEL_SHARE = 10  # percent of the level's span still to earn
STREAK_AT_RISK_MIN_DAYS = 3
STREAK_AT_RISK_FROM = time(18, 0)  # in the student's time zone
MAX_MATERIALS = 3
MIN_TOPIC_WORD = 3  # shorter topic words ("a", "of", "in") match too much to mean anything


@dataclass(frozen=True)
class Recommendation:
    code: str
    priority: int
    params: dict[str, Any]
    message: str


@dataclass(frozen=True)
class OpenHomework:
    homework_id: uuid.UUID
    title: str
    due_at: datetime
    submitted: bool  # handed in or graded: nothing left to do


@dataclass(frozen=True)
class LastLesson:
    lesson_id: uuid.UUID
    subject: str
    topic: str | None


@dataclass(frozen=True)
class SharedMaterial:
    material_id: uuid.UUID
    title: str
    subject: str | None
    viewed: bool


@dataclass(frozen=True)
class StudentData:
    xp: int
    timezone: str
    current_streak: int  # as of now
    study_days: frozenset[date] = frozenset()
    homework: tuple[OpenHomework, ...] = ()
    last_lesson: LastLesson | None = None
    materials: tuple[SharedMaterial, ...] = field(default_factory=tuple)


# --- the rules ----------------------------------------------------------------------------------


def homework_due_soon(data: StudentData, now: datetime) -> list[Recommendation]:
    """(a) Homework not handed in whose deadline is within the next 24 hours (an overdue one is not
    "due soon": homework.overdue reaches the student through notifications)."""
    due = sorted(
        (h for h in data.homework if not h.submitted and now <= h.due_at <= now + HOMEWORK_DUE_WITHIN),
        key=lambda h: h.due_at,
    )
    return [
        Recommendation(
            code="homework_due_soon",
            priority=1,
            params={
                "homework_id": str(h.homework_id),
                "title": h.title,
                "due_at": h.due_at.isoformat(),
                "hours_left": int((h.due_at - now).total_seconds() // 3600),
            },
            message=f"Homework '{h.title}' is due within 24 hours.",
        )
        for h in due
    ]


def streak_at_risk(data: StudentData, now: datetime) -> list[Recommendation]:
    """(c) A streak of 3+ days, nothing studied yet today, and it is 18:00 or later where the student is."""
    local = now.astimezone(ZoneInfo(data.timezone))
    if data.current_streak < STREAK_AT_RISK_MIN_DAYS or local.time() < STREAK_AT_RISK_FROM:
        return []
    if local.date() in data.study_days:
        return []
    return [
        Recommendation(
            code="streak_at_risk",
            priority=2,
            params={"current_streak": data.current_streak, "local_date": local.date().isoformat()},
            message=f"Study something today to keep your {data.current_streak}-day streak.",
        )
    ]


def close_to_next_level(data: StudentData, now: datetime) -> list[Recommendation]:
    """(b) The XP still needed for the next level is at most 10% of that level's span."""
    level = level_for_xp(max(data.xp, 0))
    floor, ceiling = xp_for_level(level), xp_for_level(level + 1)
    needed = ceiling - data.xp
    if needed <= 0 or needed * 100 > (ceiling - floor) * NEAR_LEVEL_SHARE:
        return []
    return [
        Recommendation(
            code="close_to_next_level",
            priority=3,
            params={"level": level, "next_level": level + 1, "xp_needed": needed},
            message=f"Only {needed} XP to level {level + 1}.",
        )
    ]


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def matches_topic(topic: str, subject: str, material: SharedMaterial) -> bool:
    """A material is about the topic when every topic word of 3+ letters begins a word of its title
    (case-insensitive, so "equation" finds "Equations"), and its subject, when it has one, is the
    lesson's subject."""
    wanted = [w for w in words(topic) if len(w) >= MIN_TOPIC_WORD]
    if not wanted:
        return False
    if material.subject and material.subject.casefold().strip() != subject.casefold().strip():
        return False
    title = words(material.title)
    return all(any(t.startswith(w) for t in title) for w in wanted)


def material_for_last_topic(data: StudentData, now: datetime) -> list[Recommendation]:
    """(d) Materials shared with the student, not yet opened, about the last completed lesson's topic."""
    lesson = data.last_lesson
    if lesson is None or not lesson.topic:
        return []
    found = [m for m in data.materials if not m.viewed and matches_topic(lesson.topic, lesson.subject, m)]
    if not found:
        return []
    found.sort(key=lambda m: (m.title.casefold(), str(m.material_id)))
    return [
        Recommendation(
            code="material_for_last_topic",
            priority=4,
            params={
                "lesson_id": str(lesson.lesson_id),
                "topic": lesson.topic,
                "materials": [{"material_id": str(m.material_id), "title": m.title} for m in found[:MAX_MATERIALS]],
            },
            message=f"Review '{lesson.topic}': {found[0].title}.",
        )
    ]


RULES = (homework_due_soon, streak_at_risk, close_to_next_level, material_for_last_topic)


def recommend(data: StudentData, now: datetime) -> list[Recommendation]:
    fired = [rec for rule in RULES for rec in rule(data, now)]
    return sorted(fired, key=lambda r: r.priority)  # stable: a rule's own order is kept


# --- the data -----------------------------------------------------------------------------------


async def load(session: AsyncSession, profile: Profile, now: datetime) -> StudentData:
    student_id = profile.student_id
    streak = await streaks.current(session, profile, now)
    days, _ = await streaks.days(session, student_id)
    homework = (
        await session.execute(
            select(Homework).where(
                Homework.student_id == student_id,
                Homework.due_at >= now,
                Homework.due_at <= now + HOMEWORK_DUE_WITHIN,
            )
        )
    ).scalars()
    last_lesson = None
    if profile.last_lesson_id is not None:
        last_lesson = LastLesson(profile.last_lesson_id, profile.last_lesson_subject or "", profile.last_lesson_topic)
    return StudentData(
        xp=profile.xp,
        timezone=profile.timezone,
        current_streak=streak.current,
        study_days=frozenset(days),
        homework=tuple(
            OpenHomework(h.homework_id, h.title, h.due_at, h.submitted_at is not None or h.graded_at is not None)
            for h in homework
        ),
        last_lesson=last_lesson,
        materials=await _shared_materials(session, profile) if last_lesson and last_lesson.topic else (),
    )


async def _shared_materials(session: AsyncSession, profile: Profile) -> tuple[SharedMaterial, ...]:
    """The tutor's materials this student may see: shared with them, or with all the tutor's students."""
    student_id = profile.student_id
    shared_with_student = select(MaterialShare.material_id).where(MaterialShare.student_id == student_id)
    visible = [Material.material_id.in_(shared_with_student)]
    if profile.tutor_id is not None:
        visible.append((Material.owner_id == profile.tutor_id) & Material.all_students)
    rows = (await session.execute(select(Material).where(or_(*visible)))).scalars().all()
    # a viewed material is one whose view earned XP: the ledger's "once per material" row
    keys = [f"material:{m.material_id}:{student_id}" for m in rows]
    viewed = set((await session.execute(select(XpEntry.source_key).where(XpEntry.source_key.in_(keys)))).scalars())
    return tuple(
        SharedMaterial(m.material_id, m.title, m.subject, f"material:{m.material_id}:{student_id}" in viewed)
        for m in rows
    )
