"""lesson-service tables. ``Base`` is what the shared Alembic environment targets.

No double booking is the database's job: ``ex_lessons_tutor_no_overlap`` (btree_gist) keeps two
lessons of one tutor that are not cancelled from overlapping, whatever runs concurrently.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()

LESSON_STATUSES = ("scheduled", "completed", "cancelled", "missed")
LESSON_TYPES = ("regular", "trial", "exam_prep")
ATTENDANCE = ("present", "late", "absent")
MASTERY = ("not_learned", "learned", "mastered")
CANCELLER_ROLES = ("tutor", "student", "parent", "admin")
OVERLAP_CONSTRAINT = "ex_lessons_tutor_no_overlap"

EAGER_DEFAULTS = {"eager_defaults": True}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LessonSeries(Base):
    """A weekly recurring series; its lessons are created up front (bounded) and edited one by one or together."""

    __tablename__ = "lesson_series"
    __mapper_args__ = EAGER_DEFAULTS

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tutor_id: Mapped[uuid.UUID] = mapped_column(index=True)
    student_id: Mapped[uuid.UUID]
    rule: Mapped[str] = mapped_column(String(500))  # RFC 5545 RRULE, in the tutor's local time
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Lesson(Base):
    __tablename__ = "lessons"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("status", LESSON_STATUSES), name="status"),
        CheckConstraint(_in("lesson_type", LESSON_TYPES), name="lesson_type"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("(price IS NULL) = (currency IS NULL)", name="price_has_currency"),
        CheckConstraint("price IS NULL OR price >= 0", name="price_not_negative"),
        CheckConstraint("grade IS NULL OR grade BETWEEN 1 AND 5", name="grade_range"),
        CheckConstraint(f"attendance IS NULL OR {_in('attendance', ATTENDANCE)}", name="attendance"),
        CheckConstraint(f"mastery IS NULL OR {_in('mastery', MASTERY)}", name="mastery"),
        ExcludeConstraint(
            ("tutor_id", "="),
            (func.tstzrange(text("starts_at"), text("ends_at"), "[)"), "&&"),
            name=OVERLAP_CONSTRAINT,
            using="gist",
            where=text("status <> 'cancelled'"),
            deferrable=True,  # initially immediate; deferred only while a group of lessons moves together
            initially="IMMEDIATE",
        ),
        Index("ix_lessons_tutor_starts", "tutor_id", "starts_at", "id"),
        Index("ix_lessons_student_starts", "student_id", "starts_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    series_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lesson_series.id", ondelete="SET NULL"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    subject: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(500))
    # the study-plan item this lesson takes (None: a topic the tutor typed, or no plan)
    plan_topic_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("study_plan_topics.id", ondelete="SET NULL"), index=True
    )
    lesson_type: Mapped[str] = mapped_column(String(20), default="regular", server_default="regular")
    price: Mapped[int | None] = mapped_column(Integer)  # minor units; None: payment-service's price applies
    currency: Mapped[str | None] = mapped_column(String(3))
    online_url: Mapped[str | None] = mapped_column(String(1000))
    place: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="scheduled", server_default="scheduled")
    chargeable: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # cancellation
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[uuid.UUID | None]
    cancelled_by_role: Mapped[str | None] = mapped_column(String(20))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    excused_by: Mapped[uuid.UUID | None]
    # completion (or a no-show)
    completed_at: Mapped[datetime | None]
    attendance: Mapped[str | None] = mapped_column(String(20))
    grade: Mapped[int | None] = mapped_column(Integer)
    mastery: Mapped[str | None] = mapped_column(String(20))
    mastery_comment: Mapped[str | None] = mapped_column(Text)
    skills: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    notes: Mapped[str | None] = mapped_column(Text)
    missed_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    @property
    def duration_minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


class StudyPlanTopic(Base):
    """One topic of a student's study plan with one tutor, in order (``position``)."""

    __tablename__ = "study_plan_topics"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (Index("ix_study_plan_topics_plan", "tutor_id", "student_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserProfile(Base):
    """The local copy of what lesson-service needs about a user: the time zone (from user.* events)."""

    __tablename__ = "user_profiles"
    __mapper_args__ = EAGER_DEFAULTS

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime]  # the occurred_at of the event it came from: an older event never wins


class CalendarFeed(Base):
    """A user's secret iCalendar feed URL; only the token's SHA-256 is stored; a new one revokes the old."""

    __tablename__ = "calendar_feeds"
    __mapper_args__ = EAGER_DEFAULTS

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


__all__ = [
    "ATTENDANCE",
    "LESSON_STATUSES",
    "LESSON_TYPES",
    "MASTERY",
    "OVERLAP_CONSTRAINT",
    "Base",
    "CalendarFeed",
    "Lesson",
    "LessonSeries",
    "StudyPlanTopic",
    "UserProfile",
]
