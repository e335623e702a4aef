"""student-service tables. ``Base`` is what the shared Alembic environment targets.

The XP ledger is the source of truth: a profile's ``xp`` and ``level`` are its sum and what the level
formula makes of it (``cli rebuild`` recomputes them). ``source_key`` is unique, so one source (a
lesson, a homework, a material, a top-up, its refund) is awarded at most once however often its event
arrives.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()


class Profile(Base):
    __tablename__ = "profiles"
    __mapper_args__ = {"eager_defaults": True}

    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tutor_id: Mapped[uuid.UUID | None]
    display_name: Mapped[str | None] = mapped_column(String(100))
    xp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    current_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    longest_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    leaderboard_visible: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow", server_default="Europe/Moscow")
    freezes_held: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    full_name: Mapped[str | None] = mapped_column(String(200))  # from user.registered/updated: the board's fallback
    # the latest completed lesson by its start (late events do not displace a later lesson): recommendations
    last_lesson_id: Mapped[uuid.UUID | None]
    last_lesson_at: Mapped[datetime | None]
    last_lesson_subject: Mapped[str | None] = mapped_column(String(200))
    last_lesson_topic: Mapped[str | None] = mapped_column(String(500))


class XpEntry(Base):
    __tablename__ = "xp_ledger"
    __table_args__ = (
        Index("ix_xp_ledger_student_occurred", "student_id", "occurred_at"),
        Index("ix_xp_ledger_tutor_occurred", "tutor_id", "occurred_at"),  # the leaderboard's window
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    student_id: Mapped[uuid.UUID]
    tutor_id: Mapped[uuid.UUID | None]
    amount: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(30))
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    source_event_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(Text)
    grade: Mapped[int | None] = mapped_column(Integer)  # a graded lesson's or homework's grade (achievements)
    occurred_at: Mapped[datetime]


class Achievement(Base):
    __tablename__ = "achievements"

    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    rarity: Mapped[str] = mapped_column(String(20))
    unlocked_at: Mapped[datetime]


class StudyDay(Base):
    """A calendar day (the student's time zone) with a completed lesson, a submission or a material viewed."""

    __tablename__ = "study_days"

    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)


class ExcusedDay(Base):
    """A day whose lesson the tutor cancelled: it does not break a streak."""

    __tablename__ = "excused_days"

    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)


class Homework(Base):
    """An assignment as homework events describe it, for the "due soon" recommendation. Events may arrive
    in any order: each one upserts the row and only fills what it knows."""

    __tablename__ = "homework"
    __table_args__ = (Index("ix_homework_student_due", "student_id", "due_at"),)

    homework_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    student_id: Mapped[uuid.UUID]
    tutor_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    graded_at: Mapped[datetime | None]


class Material(Base):
    """A tutor's material (from material.uploaded or material.shared, whichever comes first)."""

    __tablename__ = "materials"

    material_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    title: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(200))
    all_students: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class MaterialShare(Base):
    """A student given access to a material (material.shared's ``student_ids``)."""

    __tablename__ = "material_shares"
    __table_args__ = (Index("ix_material_shares_student", "student_id"),)

    material_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class LeaderboardSettings(Base):
    """A tutor's choices for their students' leaderboard."""

    __tablename__ = "leaderboard_settings"

    tutor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    anonymise: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
