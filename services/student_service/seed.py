"""student-service's part of a seeded world (``shared/seeding.py``): the XP the world's lessons, graded
homework and top-ups earn by the rules of ``domain/xp.py``, the study days they make, the homework and
materials it keeps for recommendations, and its access links. Each profile's XP, level and streaks are
what ``cli rebuild`` would make of them (the same functions), and its achievements what
``domain/achievements.py`` says they earned (unlocked at the world's now; no
``student.achievement_unlocked`` is said)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.domain import xp
from services.student_service.domain.achievements import ACHIEVEMENTS, metrics
from services.student_service.domain.streaks import compute
from services.student_service.models import Achievement, Homework, Material, Profile, StudyDay, XpEntry
from shared.events.catalogue import HomeworkGraded, LessonCompleted, PaymentReceived, StudentXpAwarded
from shared.events.envelope import Envelope
from shared.seeding import World, access_link_rows, copy_rows
from shared.tables import access_links

PRODUCER = "student-service"


@dataclass(frozen=True)
class Award:
    student_id: uuid.UUID
    tutor_id: uuid.UUID
    amount: int
    source: str
    source_key: str
    source_event_id: uuid.UUID
    grade: int | None
    occurred_at: datetime


def awards(world: World) -> list[Award]:
    """Every award the world's events earn, in the order they happened."""
    found: list[Award] = []
    for lesson in world.lessons:
        if lesson.attended:
            found.append(
                Award(lesson.student_id, lesson.tutor_id, xp.lesson_xp("regular", lesson.grade), "lesson",
                      f"lesson:{lesson.id}", world.event_id(LessonCompleted.event_type, lesson.id), lesson.grade,
                      lesson.ends_at)
            )  # fmt: skip
    for work in world.homework:
        if work.grade is not None and work.graded_at is not None:
            found.append(
                Award(work.student_id, work.tutor_id, xp.homework_xp(work.grade), "homework", f"homework:{work.id}",
                      world.event_id(HomeworkGraded.event_type, work.id), work.grade, work.graded_at)
            )  # fmt: skip
    for row in world.ledger:
        if row.kind == "top_up" and (amount := xp.top_up_xp(row.lessons_covered)):
            found.append(
                Award(row.student_id, row.tutor_id, amount, "top_up", f"top_up:{row.id}",
                      world.event_id(PaymentReceived.event_type, row.id), None, row.at)
            )  # fmt: skip
    return sorted(found, key=lambda award: (award.occurred_at, award.source_key))


def study_days(world: World) -> dict[uuid.UUID, set[date]]:
    """A completed lesson's and a hand-in's day in the student's time zone."""
    zone = {person.id: ZoneInfo(person.timezone) for person in world.students}
    days: dict[uuid.UUID, set[date]] = defaultdict(set)
    for lesson in world.lessons:
        if lesson.attended:
            days[lesson.student_id].add(lesson.ends_at.astimezone(zone[lesson.student_id]).date())
    for work in world.homework:
        if work.submitted_at is not None:
            days[work.student_id].add(work.submitted_at.astimezone(zone[work.student_id]).date())
    return days


def _profiles(world: World, earned: list[Award], days: dict[uuid.UUID, set[date]]) -> Iterator[dict[str, Any]]:
    """Each student's profile with the figures ``domain/rebuild.py`` derives from the ledger and study days."""
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for award in earned:
        totals[award.student_id] += award.amount
    last: dict[uuid.UUID, Any] = {}
    for lesson in world.lessons:
        if lesson.attended and (lesson.student_id not in last or last[lesson.student_id].starts_at < lesson.starts_at):
            last[lesson.student_id] = lesson
    for student in world.students:
        latest = last.get(student.id)
        total = totals[student.id]
        studied = days.get(student.id, set())
        streak = compute(studied, set(), max(studied)) if studied else None
        yield {
            "student_id": student.id,
            "tutor_id": world.tutor_of[student.id],
            "xp": total,
            "level": xp.level_for_xp(max(total, 0)),
            "current_streak": streak.current if streak else 0,
            "longest_streak": streak.longest if streak else 0,
            "freezes_held": streak.freezes_held if streak else 0,
            "timezone": student.timezone,
            "full_name": student.full_name,
            "last_lesson_id": latest.id if latest else None,
            "last_lesson_at": latest.starts_at if latest else None,
            "last_lesson_subject": latest.subject if latest else None,
            "last_lesson_topic": latest.topic if latest else None,
        }


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    earned = awards(world)
    studied = study_days(world)
    ledger = (
        {
            "id": world.event_id("xp", award.source_key),
            "student_id": award.student_id,
            "tutor_id": award.tutor_id,
            "amount": award.amount,
            "source": award.source,
            "source_key": award.source_key,
            "source_event_id": award.source_event_id,
            "grade": award.grade,
            "occurred_at": award.occurred_at,
        }
        for award in earned
    )
    days = ({"student_id": s, "day": d} for s, student_days in studied.items() for d in sorted(student_days))
    homework = (
        {
            "homework_id": w.id,
            "student_id": w.student_id,
            "tutor_id": w.tutor_id,
            "title": w.title,
            "due_at": w.due_at,
            "submitted_at": w.submitted_at,
            "graded_at": w.graded_at,
        }
        for w in world.homework
    )
    materials = (
        {"material_id": m.id, "owner_id": m.tutor_id, "title": m.title, "subject": m.subject, "all_students": True}
        for m in world.materials
    )
    written = {
        "profiles": await copy_rows(session, Profile.__table__, _profiles(world, earned, studied)),
        "xp_ledger": await copy_rows(session, XpEntry.__table__, ledger),
        "study_days": await copy_rows(session, StudyDay.__table__, days),
        "homework": await copy_rows(session, Homework.__table__, homework),
        "materials": await copy_rows(session, Material.__table__, materials),
        "access_links": await copy_rows(session, access_links, access_link_rows(world)),
    }
    written["achievements"] = await copy_rows(session, Achievement.__table__, await _achievements(session, world))
    return written


async def _achievements(session: AsyncSession, world: World) -> list[dict[str, Any]]:
    earned: list[dict[str, Any]] = []
    students = [student.id for student in world.students]
    for profile in (await session.scalars(select(Profile).where(Profile.student_id.in_(students)))).all():
        values = await metrics(session, profile)
        earned += [
            {"student_id": profile.student_id, "code": rule.code, "rarity": rule.rarity, "unlocked_at": world.as_of}
            for rule in ACHIEVEMENTS
            if values[rule.metric] >= rule.target
        ]
    return earned


def events(world: World) -> Iterator[Envelope]:
    """``student.xp_awarded`` for every award, with the student's running total."""
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for award in awards(world):
        totals[award.student_id] += award.amount
        payload = StudentXpAwarded(
            student_id=award.student_id,
            tutor_id=award.tutor_id,
            amount=award.amount,
            source=award.source,  # type: ignore[arg-type]
            source_event_id=award.source_event_id,
            total_xp=totals[award.student_id],
        )
        yield world.envelope(payload, award.source_key, producer=PRODUCER, occurred_at=award.occurred_at)
