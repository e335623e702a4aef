"""The reports' JSON shapes (their CSV has the rows' columns)."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class _Report(BaseModel):
    """A report's range: calendar days, inclusive, in ``timezone``."""

    model_config = ConfigDict(populate_by_name=True)

    timezone: str
    from_: date = Field(alias="from")
    to: date


class Amount(BaseModel):
    currency: str
    amount: int = Field(description="minor units (kopecks, cents)")


class LessonCounts(BaseModel):
    held: int
    cancelled: int
    missed: int


class HomeworkTotals(BaseModel):
    assigned: int
    completed: int
    completion_rate: float | None = Field(description="completed / assigned; null when none was assigned")
    average_grade: str | None = Field(description="a decimal, e.g. '4.50'; null when none was graded")


class Debt(BaseModel):
    student_id: uuid.UUID
    amount: int = Field(description="minor units owed (the balance below zero)")
    currency: str


class SummaryOut(_Report):
    tutor_id: uuid.UUID
    income: list[Amount] = Field(description="per currency: charges minus charges given back")
    lessons: LessonCounts
    attendance_rate: float | None = Field(description="held / (held + missed); null when none was due")
    active_students: int
    homework: HomeworkTotals
    debts: list[Debt]


class IncomeRow(BaseModel):
    period: date = Field(description="the day, or the month's first day")
    currency: str
    charged: int
    refunded: int
    income: int


class IncomeOut(_Report):
    tutor_id: uuid.UUID
    items: list[IncomeRow]


class ProgressRow(BaseModel):
    period: date = Field(description="the month's first day")
    lessons_held: int
    lessons_missed: int
    average_lesson_grade: str | None
    topics_mastered: int
    homework_assigned: int
    homework_completed: int
    average_homework_grade: str | None


class ProgressOut(_Report):
    student_id: uuid.UUID
    items: list[ProgressRow]
