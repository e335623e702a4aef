"""analytics-service tables. ``Base`` is what the shared Alembic environment targets.

- ``event_log``: every envelope the service consumed, as received (``event_id`` unique). It is
  the source of truth: the read models below are derived from it and ``cli rebuild`` recomputes
  them from it.
- read models, each row a fact keyed by the id of what it describes, merged so that the
  result does not depend on the order events arrive in (the latest ``occurred_at`` wins,
  ties broken by ``event_id``): ``users`` (time zone), ``lessons`` (status, attendance, grade),
  ``money`` (one row per charge, refund or top-up), ``balances`` (the latest balance per tutor
  and student), ``homework`` (assigned, submitted, graded) and ``game`` (XP and achievements).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Identity, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()


class EventLog(Base):
    __tablename__ = "event_log"
    __table_args__ = (Index("ix_event_log_occurred", "occurred_at", "event_id"),)

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]
    envelope: Mapped[dict] = mapped_column(JSONB)  # type: ignore[type-arg]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserFact(Base):
    __tablename__ = "users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[datetime]
    as_of_event: Mapped[uuid.UUID]


class LessonFact(Base):
    __tablename__ = "lessons"
    __table_args__ = (
        Index("ix_lessons_tutor_starts", "tutor_id", "starts_at"),
        Index("ix_lessons_student_starts", "student_id", "starts_at"),
    )

    lesson_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    starts_at: Mapped[datetime]
    subject: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))  # scheduled, cancelled, completed, missed
    attendance: Mapped[str | None] = mapped_column(String(20))
    grade: Mapped[int | None] = mapped_column(Integer)
    mastery: Mapped[str | None] = mapped_column(String(20))
    as_of: Mapped[datetime]
    as_of_event: Mapped[uuid.UUID]


class MoneyFact(Base):
    __tablename__ = "money"
    __table_args__ = (Index("ix_money_tutor_occurred", "tutor_id", "occurred_at"),)

    entry_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # charge_id, refund_id or payment_id
    kind: Mapped[str] = mapped_column(String(20))  # charge, charge_refund, top_up, top_up_refund
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)  # positive minor units as the event says
    currency: Mapped[str] = mapped_column(String(3))
    lesson_id: Mapped[uuid.UUID | None]
    occurred_at: Mapped[datetime]


class BalanceFact(Base):
    __tablename__ = "balances"

    tutor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    as_of: Mapped[datetime]
    as_of_event: Mapped[uuid.UUID]


class HomeworkFact(Base):
    __tablename__ = "homework"
    __table_args__ = (Index("ix_homework_tutor_due", "tutor_id", "due_at"),)

    homework_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    due_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    grade: Mapped[int | None] = mapped_column(Integer)
    graded_at: Mapped[datetime | None]  # occurred_at of the grade that stands (the latest)
    graded_event: Mapped[uuid.UUID | None]


class GameFact(Base):
    __tablename__ = "game"
    __table_args__ = (Index("ix_game_student", "student_id"),)

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the student.* event
    kind: Mapped[str] = mapped_column(String(20))  # xp, achievement
    student_id: Mapped[uuid.UUID]
    tutor_id: Mapped[uuid.UUID | None]
    amount: Mapped[int] = mapped_column(BigInteger)  # XP; 1 for an achievement
    occurred_at: Mapped[datetime]
