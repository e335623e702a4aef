"""homework-service tables. ``Base`` is what the shared Alembic environment targets.

``homework.overdue`` is emitted once per assignment: ``overdue_notified_at`` is set in the same
transaction as the outbox row, under ``FOR UPDATE SKIP LOCKED`` (see ``domain.overdue``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()

# stored states; "overdue" is shown for an assigned one past its deadline (see ``shown_status``)
HOMEWORK_STATUSES = ("assigned", "submitted", "returned", "graded")
EAGER_DEFAULTS = {"eager_defaults": True}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Homework(Base):
    __tablename__ = "homework"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("status", HOMEWORK_STATUSES), name="status"),
        CheckConstraint("grade IS NULL OR grade BETWEEN 1 AND 5", name="grade_range"),
        Index("ix_homework_tutor_created", "tutor_id", "created_at", "id"),
        Index("ix_homework_student_created", "student_id", "created_at", "id"),
        # what the overdue scheduler scans: assigned, not yet announced, by deadline
        Index(
            "ix_homework_overdue_due",
            "due_at",
            postgresql_where=sql("status = 'assigned' AND overdue_notified_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tutor_id: Mapped[uuid.UUID]
    student_id: Mapped[uuid.UUID]
    lesson_id: Mapped[uuid.UUID | None]
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    material_ids: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=sql("'[]'::jsonb"))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="assigned", server_default="assigned")
    grade: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)  # the tutor's, on a grade or a return
    graded_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    overdue_notified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    def shown_status(self, now: datetime) -> str:
        if self.status == "assigned" and self.due_at <= now:
            return "overdue"
        return self.status


class Submission(Base):
    """One hand-in; a student resubmits (after a return, or before grading) with a new row."""

    __tablename__ = "submissions"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (Index("ix_submissions_homework_submitted", "homework_id", "submitted_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    homework_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("homework.id", ondelete="CASCADE"))
    student_id: Mapped[uuid.UUID]
    text: Mapped[str | None] = mapped_column(Text)
    material_ids: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=sql("'[]'::jsonb"))
    late: Mapped[bool] = mapped_column(default=False, server_default=sql("false"))
    submitted_at: Mapped[datetime]  # the service clock's time
    # the database's, distinct within a transaction: orders hand-ins made at the same clock time
    created_at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())


__all__ = ["HOMEWORK_STATUSES", "Base", "Homework", "Submission"]
