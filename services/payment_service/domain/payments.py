"""What a tutor records: top-ups (an amount, or a package of N lessons at the student's price),
refunds and manual corrections, each one ledger row on the locked account, with its event."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.ledger import (
    AccountKey,
    adopt_currency,
    check_currency,
    get_entry,
    lock_account,
    post_entry,
    refunded_so_far,
)
from services.payment_service.domain.prices import price_for
from services.payment_service.domain.runway import runway, say_if_low
from services.payment_service.models import LedgerEntry
from shared.errors import NotFound, Unprocessable
from shared.events.catalogue import PaymentReceived, PaymentRefunded
from shared.events.outbox import add_event


def _invalid(field: str, message: str, code: str = "validation_error") -> Unprocessable:
    return Unprocessable(
        f"Invalid input: {field}", code=code, details=[{"field": field, "message": message, "type": "value_error"}]
    )


async def top_up(
    session: AsyncSession,
    key: AccountKey,
    *,
    amount: int | None,
    lessons: int | None,
    currency: str | None,
    method: str,
    note: str | None,
    recorded_by: uuid.UUID,
    now: datetime,
    default_currency: str,
) -> LedgerEntry:
    if lessons is not None:  # a package: N lessons at the student's price
        price = await price_for(session, key.tutor_id, key.student_id)
        if price is None:
            raise _invalid("lessons", "no price is set for this student: set one, or top up an amount", "no_price")
        if currency is not None and currency != price.currency:
            raise _invalid("currency", f"the student's price is in {price.currency}")
        amount, currency = price.amount * lessons, price.currency
    assert amount is not None
    account = await lock_account(session, key, currency=currency or default_currency)
    currency = currency or account.currency
    await adopt_currency(session, account, currency)
    before = await runway(session, account, now=now)
    entry = await post_entry(
        session,
        account,
        kind="top_up",
        amount=amount,
        currency=currency,
        at=now,
        method=method,
        lessons=lessons,
        reason=note,
        created_by=recorded_by,
    )
    after = await say_if_low(session, account, now=now)
    await add_event(
        session,
        PaymentReceived(
            student_id=key.student_id,
            tutor_id=key.tutor_id,
            amount=amount,
            currency=currency,
            balance_after=entry.balance_after,
            payment_id=entry.id,
            method=method,
            lessons_covered=max(0, after.scheduled_covered - before.scheduled_covered),
        ),
    )
    return entry


async def refund(
    session: AsyncSession,
    key: AccountKey,
    *,
    amount: int,
    currency: str,
    reason: str,
    payment_id: uuid.UUID | None,
    recorded_by: uuid.UUID,
    now: datetime,
) -> LedgerEntry:
    """Money given back to the student: a negative row, at most what the named top-up brought in."""
    account = await lock_account(session, key, currency=currency)
    check_currency(account, currency)
    if payment_id is not None:
        paid = await get_entry(session, key, payment_id)
        if paid is None or paid.kind != "top_up":
            raise NotFound("No such top-up for this student")
        if amount > paid.amount - await refunded_so_far(session, paid.id):
            raise _invalid("amount", "more than is left of that top-up to refund", "refund_too_large")
    entry = await post_entry(
        session,
        account,
        kind="refund",
        amount=-amount,
        currency=currency,
        at=now,
        refunds_entry_id=payment_id,
        reason=reason,
        created_by=recorded_by,
    )
    await add_event(
        session,
        PaymentRefunded(
            student_id=key.student_id,
            tutor_id=key.tutor_id,
            amount=amount,
            currency=currency,
            balance_after=entry.balance_after,
            refund_id=entry.id,
            payment_id=payment_id,
            reason=reason,
        ),
    )
    await say_if_low(session, account, now=now)
    return entry


async def correct(
    session: AsyncSession,
    key: AccountKey,
    *,
    amount: int,
    currency: str,
    reason: str,
    recorded_by: uuid.UUID,
    now: datetime,
) -> LedgerEntry:
    """A manual correction, either way, always with a reason (the rows before it stay as they were)."""
    account = await lock_account(session, key, currency=currency)
    entry = await post_entry(
        session,
        account,
        kind="correction",
        amount=amount,
        currency=currency,
        at=now,
        reason=reason,
        created_by=recorded_by,
    )
    await say_if_low(session, account, now=now)
    return entry
