"""A student's statement with a tutor: the rows, and totals per month aggregated in SQL.

Rows are listed in the order they were applied; a row is dated when it happened (a charge at
its lesson event's time, which may be late), and months count rows by that date.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.ledger import AccountKey
from services.payment_service.models import LESSON_CHARGES, LedgerEntry

MAX_EXPORT_ROWS = 100_000


def _of(key: AccountKey) -> Any:
    return (LedgerEntry.tutor_id == key.tutor_id) & (LedgerEntry.student_id == key.student_id)


async def entries(
    session: AsyncSession, key: AccountKey, *, limit: int, before: tuple[datetime, uuid.UUID] | None
) -> Sequence[LedgerEntry]:
    """Newest first in the order the rows were applied (``seq``: each ``balance_after`` is the
    running balance down the list), keyset-paged after the cursor's row."""
    query = select(LedgerEntry).where(_of(key))
    if before is not None:
        _, entry_id = before
        query = query.where(
            LedgerEntry.seq < select(LedgerEntry.seq).where(LedgerEntry.id == entry_id).scalar_subquery()
        )
    return (await session.scalars(query.order_by(LedgerEntry.seq.desc()).limit(limit))).all()


async def all_entries(session: AsyncSession, key: AccountKey) -> Sequence[LedgerEntry]:
    query = select(LedgerEntry).where(_of(key)).order_by(LedgerEntry.seq)
    return (await session.scalars(query.limit(MAX_EXPORT_ROWS))).all()


async def monthly(session: AsyncSession, key: AccountKey, *, timezone: str) -> list[dict[str, Any]]:
    month = func.to_char(func.timezone(timezone, LedgerEntry.created_at), "YYYY-MM").label("month")

    def total(*kinds: str) -> Any:
        return func.coalesce(func.sum(case((LedgerEntry.kind.in_(kinds), LedgerEntry.amount), else_=0)), 0)

    per_month = (
        select(
            month,
            LedgerEntry.currency,
            total("top_up").label("top_ups"),
            (-total(*LESSON_CHARGES)).label("charges"),
            (-total("refund")).label("refunds"),
            total("correction").label("corrections"),
            func.sum(LedgerEntry.amount).label("net"),
        )
        .where(_of(key))
        .group_by(month, LedgerEntry.currency)
        .subquery()
    )
    closing = func.sum(per_month.c.net).over(order_by=per_month.c.month).label("closing_balance")
    rows = (await session.execute(select(per_month, closing).order_by(per_month.c.month))).mappings().all()
    return [
        {name: (int(value) if name not in ("month", "currency") else value) for name, value in row.items()}
        for row in rows
    ]
