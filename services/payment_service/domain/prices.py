"""Prices: a tutor's default and per-student overrides, in minor units with a currency.

The price of a lesson: its own override (from the lesson event) wins, then the student's
price with that tutor, then the tutor's default.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.models import Price


@dataclass(frozen=True)
class Money:
    amount: int
    currency: str


def price_query(tutor_id: uuid.UUID, student_id: uuid.UUID) -> Select[tuple[int, str]]:
    """``(amount, currency)`` of the student's price with the tutor, else of the tutor's default
    (each unique by index, so the student's sorts first); no row when neither is set."""
    return (
        select(Price.amount, Price.currency)
        .where(Price.tutor_id == tutor_id, or_(Price.student_id == student_id, Price.student_id.is_(None)))
        .order_by(Price.student_id.asc().nulls_last())
        .limit(1)
    )


async def price_for(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID) -> Money | None:
    """The student's price with the tutor, else the tutor's default; None when neither is set."""
    row = (await session.execute(price_query(tutor_id, student_id))).first()
    return Money(row.amount, row.currency) if row else None


async def default_price(session: AsyncSession, tutor_id: uuid.UUID) -> Money | None:
    row = await session.scalar(select(Price).where(Price.tutor_id == tutor_id, Price.student_id.is_(None)))
    return Money(row.amount, row.currency) if row else None


async def student_price(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID) -> Money | None:
    row = await session.scalar(select(Price).where(Price.tutor_id == tutor_id, Price.student_id == student_id))
    return Money(row.amount, row.currency) if row else None


async def set_price(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID | None, price: Money) -> Money:
    """Set (or replace) the tutor's default price (``student_id`` None) or one student's price."""
    statement = insert(Price).values(
        id=uuid.uuid4(), tutor_id=tutor_id, student_id=student_id, amount=price.amount, currency=price.currency
    )
    where = "student_id IS NULL" if student_id is None else "student_id IS NOT NULL"
    index = ["tutor_id"] if student_id is None else ["tutor_id", "student_id"]
    statement = statement.on_conflict_do_update(
        index_elements=index,
        index_where=text(where),
        set_={"amount": price.amount, "currency": price.currency, "updated_at": func.now()},
    )
    await session.execute(statement)
    return price


async def remove_student_price(session: AsyncSession, tutor_id: uuid.UUID, student_id: uuid.UUID) -> bool:
    result = await session.execute(delete(Price).where(Price.tutor_id == tutor_id, Price.student_id == student_id))
    return bool(result.rowcount)
