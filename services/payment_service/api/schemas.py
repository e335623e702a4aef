"""Request and response bodies. Money is integer minor units plus an ISO 4217 currency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from services.payment_service.models import LedgerEntry

MAX_AMOUNT = 10**12  # minor units; far beyond any lesson package, well inside BIGINT

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
PositiveAmount = Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="minor units (kopecks, cents)")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Method = Literal["cash", "transfer", "card"]


def invalid_field(field: str, message: str) -> ValidationError:
    """A validation error about one field found by a check across fields, so the 422 names it."""
    return ValidationError.from_exception_data(
        "body", [{"type": "value_error", "loc": (field,), "input": None, "ctx": {"error": ValueError(message)}}]
    )


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TopUpIn(Request):
    """An amount, or a package of ``lessons`` at the student's price (then the amount is computed)."""

    student_id: uuid.UUID
    amount: PositiveAmount | None = None
    lessons: Annotated[int, Field(gt=0, le=1000)] | None = None
    currency: Currency | None = None
    method: Method
    note: Reason | None = None

    @model_validator(mode="after")
    def _amount_or_lessons(self) -> TopUpIn:
        if (self.amount is None) == (self.lessons is None):
            raise invalid_field("amount", "give either amount or lessons")
        if self.amount is not None and self.currency is None:
            raise invalid_field("currency", "an amount needs its currency")
        return self


class RefundIn(Request):
    student_id: uuid.UUID
    amount: PositiveAmount
    currency: Currency
    reason: Reason
    payment_id: uuid.UUID | None = None  # the top-up being given back


class CorrectionIn(Request):
    student_id: uuid.UUID
    amount: Annotated[int, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="signed minor units, never 0")]
    currency: Currency
    reason: Reason

    @model_validator(mode="after")
    def _not_zero(self) -> CorrectionIn:
        if self.amount == 0:
            raise invalid_field("amount", "a correction of 0 changes nothing")
        return self


class PriceIn(Request):
    amount: PositiveAmount
    currency: Currency


class PriceOut(BaseModel):
    tutor_id: uuid.UUID
    student_id: uuid.UUID | None
    amount: int
    currency: str
    source: Literal["lesson", "student", "default"]


class EntryOut(BaseModel):
    id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    kind: str
    amount: int
    currency: str
    balance_after: int
    method: str | None
    lessons: int | None
    lesson_id: uuid.UUID | None
    payment_id: uuid.UUID | None  # for a refund: the top-up it gives back
    reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> EntryOut:
        return cls(
            id=entry.id,
            tutor_id=entry.tutor_id,
            student_id=entry.student_id,
            kind=entry.kind,
            amount=entry.amount,
            currency=entry.currency,
            balance_after=entry.balance_after,
            method=entry.method,
            lessons=entry.lessons,
            lesson_id=entry.lesson_id,
            payment_id=entry.refunds_entry_id,
            reason=entry.reason,
            created_at=entry.created_at,
        )


class BalanceOut(BaseModel):
    student_id: uuid.UUID
    tutor_id: uuid.UUID | None
    balance: int  # negative: the student owes
    currency: str
    in_debt: bool
    lessons_covered: int
    covered_until: datetime | None


class DebtOut(BaseModel):
    student_id: uuid.UUID
    balance: int
    currency: str
    since: datetime  # the last change of the balance


class MonthOut(BaseModel):
    month: str  # YYYY-MM in the requested time zone
    currency: str
    top_ups: int
    charges: int  # positive: what was charged
    refunds: int  # positive: what was given back
    corrections: int  # signed
    net: int
    closing_balance: int
