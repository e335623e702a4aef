"""notification-service tables. ``Base`` is what the shared Alembic environment targets.

A reminder is a row per (lesson, recipient, offset): created pending on ``lesson.scheduled``,
moved on ``lesson.rescheduled``, withdrawn on ``lesson.cancelled``, and sent once by the scheduler
(``domain.reminders.emit_due``) under ``FOR UPDATE SKIP LOCKED``, marked in the transaction that adds
its ``notification.requested`` to the outbox.

Every notification the service decides on is a ``deliveries`` row (the delivery log), unique by its
``dedup_key``. The small facts the digests need (lesson outcomes, homework, payments) are kept from
the events consumed (docs/decisions/0016).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Time, UniqueConstraint, func
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()

REMINDER_STATUSES = ("pending", "sent", "withdrawn", "dropped", "suppressed")
# requested: handed to the bot; deferred: waits for quiet hours to end; suppressed: the kind is switched off;
# dropped: too late to be of use; delivered / failed: what the bot answered
DELIVERY_STATUSES = ("requested", "deferred", "suppressed", "dropped", "delivered", "failed")
DIGEST_KINDS = ("weekly", "monthly")
EAGER_DEFAULTS = {"eager_defaults": True}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Recipient(Base):
    """What the service knows of a user (from user.registered / user.updated) and their preferences
    (``PUT /api/v1/notifications/preferences``; None: the default)."""

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
    # the kinds switched off (None: none), so a kind added later is on for everyone
    disabled_kinds: Mapped[list[str] | None] = mapped_column(JSONB)
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)  # local time in ``timezone``
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    preferred_language: Mapped[str | None] = mapped_column(String(8))  # overrides ``language``
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
    reason: Mapped[str | None] = mapped_column(String(200))  # why it was dropped or suppressed
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Delivery(Base):
    """The delivery log: one row per notification decided on; ``id`` is the ``notification_id``."""

    __tablename__ = "deliveries"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        UniqueConstraint("dedup_key", name="uq_deliveries_dedup_key"),
        Index("ix_deliveries_user_created", "user_id", "created_at", "id"),
        # what the deferred pass scans
        Index("ix_deliveries_deferred_due", "deliver_at", postgresql_where=sql("status = 'deferred'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(40))
    template: Mapped[str] = mapped_column(String(60))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    dedup_key: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    deliver_at: Mapped[datetime | None]  # deferred: when quiet hours end
    requested_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class LessonOutcome(Base):
    """A lesson held or missed (lesson.completed / lesson.missed): the digests' lessons."""

    __tablename__ = "lesson_outcomes"
    __table_args__ = (Index("ix_lesson_outcomes_student_starts", "student_id", "starts_at"),)

    lesson_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    subject: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str | None] = mapped_column(String(500))
    starts_at: Mapped[datetime]
    attendance: Mapped[str] = mapped_column(String(20))  # present | late | absent
    grade: Mapped[int | None] = mapped_column(Integer)
    mastery: Mapped[str | None] = mapped_column(String(20))


class HomeworkFact(Base):
    """An assignment as the homework events told it; also the "due tomorrow" scheduler's rows
    (``due_notice_at``, marked ``due_notified_at`` under ``FOR UPDATE SKIP LOCKED``)."""

    __tablename__ = "homework"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        Index("ix_homework_student_due", "student_id", "due_at"),
        Index("ix_homework_lesson", "lesson_id"),
        Index(
            "ix_homework_due_notice",
            "due_notice_at",
            postgresql_where=sql("due_notified_at IS NULL AND submitted_at IS NULL AND graded_at IS NULL"),
        ),
    )

    homework_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(300))
    due_at: Mapped[datetime]
    lesson_id: Mapped[uuid.UUID | None]
    assigned_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    graded_at: Mapped[datetime | None]
    grade: Mapped[int | None] = mapped_column(Integer)
    due_notice_at: Mapped[datetime | None]  # due_at − 24 h; None: too late to be of use when assigned
    due_notified_at: Mapped[datetime | None]


class PaymentFact(Base):
    """A top-up (payment.received): the digests' payments."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_student_received", "student_id", "received_at"),)

    payment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[datetime]


class Digest(Base):
    """One weekly summary or monthly report per recipient, student and period: the unique key is what
    makes it once with any number of schedulers."""

    __tablename__ = "digests"
    __table_args__ = (
        CheckConstraint(_in("kind", DIGEST_KINDS), name="kind"),
        UniqueConstraint("kind", "user_id", "student_id", "period_start", name="uq_digests_period"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    period_start: Mapped[date]
    period_end: Mapped[date]  # exclusive
    delivery_id: Mapped[uuid.UUID | None]  # None: nothing happened in the period, nothing sent
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


__all__ = [
    "DELIVERY_STATUSES",
    "DIGEST_KINDS",
    "REMINDER_STATUSES",
    "Base",
    "Delivery",
    "Digest",
    "HomeworkFact",
    "LessonOutcome",
    "PaymentFact",
    "Recipient",
    "Reminder",
]
