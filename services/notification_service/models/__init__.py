"""notification-service tables. ``Base`` is what the shared Alembic environment targets.

A reminder is a row per (lesson, recipient, offset): created pending on ``lesson.scheduled``,
moved on ``lesson.rescheduled``, withdrawn on ``lesson.cancelled``, and sent once by the scheduler
(``domain.reminders.emit_due``) under ``FOR UPDATE SKIP LOCKED``, marked in the transaction that adds
its ``notification.requested`` to the outbox.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, UniqueConstraint, func
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()

REMINDER_STATUSES = ("pending", "sent", "withdrawn", "dropped")
EAGER_DEFAULTS = {"eager_defaults": True}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Recipient(Base):
    """What the service knows of a user (from user.registered / user.updated) and their reminder offsets."""

    __tablename__ = "recipients"
    __mapper_args__ = EAGER_DEFAULTS

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    role: Mapped[str | None] = mapped_column(String(20))
    full_name: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    language: Mapped[str] = mapped_column(String(16), default="ru", server_default="ru")
    telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    # minutes before a lesson; None: the service's default
    reminder_offsets_minutes: Mapped[list[int] | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Reminder(Base):
    __tablename__ = "reminders"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("status", REMINDER_STATUSES), name="status"),
        CheckConstraint("offset_minutes > 0", name="offset_positive"),
        UniqueConstraint("lesson_id", "user_id", "offset_minutes", name="uq_reminders_lesson_user_offset"),
        Index("ix_reminders_lesson", "lesson_id"),
        # what the scheduler scans: pending, by due time
        Index("ix_reminders_pending_due", "due_at", postgresql_where=sql("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    lesson_id: Mapped[uuid.UUID]
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]  # the recipient: the student or a parent
    offset_minutes: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str | None] = mapped_column(String(500))
    starts_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    notification_id: Mapped[uuid.UUID | None]  # the notification.requested that sent it
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


__all__ = ["REMINDER_STATUSES", "Base", "Recipient", "Reminder"]
