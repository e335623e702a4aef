"""payment-service tables. ``Base`` is what the shared Alembic environment targets.

- ``ledger_entries``: every change of a balance, one immutable row (a trigger refuses UPDATE
  and DELETE); the balance is the sum of a student's rows with a tutor.
- ``accounts``: one row per tutor and student: the row every change locks (``FOR UPDATE``),
  the running ``balance`` (always equal to the sum of the entries; tests rebuild it) and
  whether ``balance.low`` was already said for the current crossing.
- ``prices``: a tutor's default price (``student_id`` NULL) and per-student overrides.
- ``scheduled_lessons``: the lessons learned from lesson events, for the runway.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()

EAGER_DEFAULTS = {"eager_defaults": True}

# kinds of ledger rows, and the sign their amount must have
CREDITS = ("top_up",)
DEBITS = ("lesson_charge", "late_cancel_charge", "no_show_charge", "refund")
LESSON_CHARGES = ("lesson_charge", "late_cancel_charge", "no_show_charge")
ENTRY_KINDS = (*CREDITS, *DEBITS, "correction")
TOP_UP_METHODS = ("cash", "transfer", "card")
LESSON_STATUSES = ("scheduled", "cancelled", "completed", "missed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Account(Base):
    __tablename__ = "accounts"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        Index("ix_accounts_tutor_debt", "tutor_id", "balance", postgresql_where=text("balance < 0")),
        Index("ix_accounts_student", "student_id"),
    )

    tutor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    low_notified: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint(f"NOT ({_in('kind', CREDITS)}) OR amount > 0", name="credit_positive"),
        CheckConstraint(f"NOT ({_in('kind', DEBITS)}) OR amount < 0", name="debit_negative"),
        CheckConstraint(f"NOT ({_in('kind', ('refund', 'correction'))}) OR reason IS NOT NULL", name="has_reason"),
        CheckConstraint("(kind = 'top_up') = (method IS NOT NULL)", name="top_up_method"),
        CheckConstraint(f"({_in('kind', LESSON_CHARGES)}) = (lesson_id IS NOT NULL)", name="charge_names_lesson"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        # a lesson is charged at most once, whichever event or instance comes first
        Index(
            "uq_ledger_entries_lesson_charge", "lesson_id", unique=True, postgresql_where=text("lesson_id IS NOT NULL")
        ),
        # a student's statement with a tutor, newest first, in keyset order
        Index("ix_ledger_entries_account", "tutor_id", "student_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # the order rows were appended in; taken under the account's lock, so per account it is the
    # order balance_after chains in
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(30))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed minor units: + pays in, - takes out
    currency: Mapped[str] = mapped_column(String(3))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str | None] = mapped_column(String(20))
    lessons: Mapped[int | None] = mapped_column(Integer)  # a package top-up: how many lessons it buys
    lesson_id: Mapped[uuid.UUID | None]
    refunds_entry_id: Mapped[uuid.UUID | None]  # the top-up (or charge) a refund gives back
    reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[uuid.UUID | None]  # the tutor; None for a charge made from an event
    source_event_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Price(Base):
    __tablename__ = "prices"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        Index("uq_prices_tutor_default", "tutor_id", unique=True, postgresql_where=text("student_id IS NULL")),
        Index(
            "uq_prices_tutor_student",
            "tutor_id",
            "student_id",
            unique=True,
            postgresql_where=text("student_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID | None]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ScheduledLesson(Base):
    """A lesson as the lesson events told it; ``observed_at`` is the newest event's ``occurred_at``."""

    __tablename__ = "scheduled_lessons"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("status", LESSON_STATUSES), name="status"),
        Index(
            "ix_scheduled_lessons_upcoming",
            "tutor_id",
            "student_id",
            "starts_at",
            postgresql_where=text("status = 'scheduled'"),
        ),
    )

    lesson_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    lesson_type: Mapped[str] = mapped_column(String(20))
    price: Mapped[int | None] = mapped_column(BigInteger)  # the lesson's own override
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    observed_at: Mapped[datetime]


__all__ = [
    "CREDITS",
    "DEBITS",
    "ENTRY_KINDS",
    "LESSON_CHARGES",
    "LESSON_STATUSES",
    "TOP_UP_METHODS",
    "Account",
    "Base",
    "LedgerEntry",
    "Price",
    "ScheduledLesson",
]
