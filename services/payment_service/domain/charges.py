"""Lessons, as the lesson events tell them: the schedule for the runway, and charges.

A completed lesson, a chargeable cancellation (late) and a chargeable missed lesson (no-show)
are each charged once: the lesson's own price, else the student's, else the tutor's default.
A lesson with no price anywhere is not charged (logged): there is nothing to charge.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Boolean, exists, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.ledger import (
    AccountKey,
    lesson_already_charged,
    lock_account,
    lock_existing_account,
    post_charge,
    post_entry,
)
from services.payment_service.domain.prices import Money, price_for
from services.payment_service.domain.runway import note_if_low
from services.payment_service.models import Account, LedgerEntry, ScheduledLesson
from shared.events.catalogue import (
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    LessonScheduled,
    PaymentCharged,
    PaymentRefunded,
)
from shared.events.envelope import Envelope
from shared.events.outbox import add_event

log = logging.getLogger(__name__)

LessonEvent = LessonScheduled | LessonRescheduled | LessonCancelled | LessonCompleted | LessonMissed

CHARGE_KIND = {"completed": "lesson_charge", "cancelled": "late_cancel_charge", "missed": "no_show_charge"}
CHARGE_REASON = {"completed": "lesson", "cancelled": "late cancellation", "missed": "no-show"}


async def _remember(
    session: AsyncSession, lesson: LessonEvent, *, status: str, observed_at: datetime, check_charged: bool = False
) -> tuple[bool, bool | None]:
    """Upsert the lesson; False when a newer observation is already kept (the event is stale).

    A scheduled lesson takes any later news; a lesson once over takes only newer news
    (a cancellation sent again, excused). With ``check_charged``, also whether the lesson
    is charged already (else None), in the same statement: only correct when the account
    was locked by an EARLIER statement, so that this statement's snapshot, taken after the
    lock, sees every charge committed for the lesson (charging takes that lock).
    """
    values = {
        "lesson_id": lesson.lesson_id,
        "tutor_id": lesson.tutor_id,
        "student_id": lesson.student_id,
        "starts_at": lesson.starts_at,
        "ends_at": lesson.ends_at,
        "lesson_type": lesson.lesson_type,
        "price": lesson.price,
        "currency": lesson.currency,
        "status": status,
        "observed_at": observed_at,
    }
    statement = insert(ScheduledLesson).values(**values)
    table = ScheduledLesson.__table__
    newer = table.c.observed_at < statement.excluded.observed_at
    where = (
        (table.c.status == "scheduled") & newer if status == "scheduled" else (table.c.status == "scheduled") | newer
    )
    charged = exists().where(LedgerEntry.lesson_id == lesson.lesson_id) if check_charged else literal(None, Boolean)
    applied = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.lesson_id],
                set_={k: statement.excluded[k] for k in values if k != "lesson_id"},
                where=where,
            ).returning(table.c.lesson_id, charged)
        )
    ).first()
    if applied is None:
        return False, None
    return True, applied[1]


async def lesson_planned(
    session: AsyncSession, lesson: LessonEvent, envelope: Envelope, *, default_currency: str
) -> None:
    """lesson.scheduled / lesson.rescheduled: the schedule changed; the runway may no longer reach."""
    price = await _price(session, lesson)
    currency = price.currency if price else default_currency
    # the account first, the lesson's row second: the same order as lesson_ended, so no deadlock
    account = await lock_account(session, AccountKey(lesson.tutor_id, lesson.student_id), currency=currency)
    if (await _remember(session, lesson, status="scheduled", observed_at=envelope.occurred_at))[0]:
        await note_if_low(session, account, now=envelope.occurred_at)


async def lesson_ended(
    session: AsyncSession,
    lesson: LessonCompleted | LessonCancelled | LessonMissed,
    envelope: Envelope,
    *,
    status: str,
) -> None:
    """lesson.completed / .cancelled / .missed: off the schedule, and charged once when chargeable."""
    key = AccountKey(lesson.tutor_id, lesson.student_id)
    # lock first, if the account exists: every change of this balance goes one at a time
    known = await lock_existing_account(session, key)
    remembered, charged = await _remember(
        session, lesson, status=status, observed_at=envelope.occurred_at, check_charged=known is not None
    )
    if not remembered:
        log.info("stale lesson event ignored", extra={"lesson_id": str(lesson.lesson_id), "event": envelope.event_type})
        return
    if isinstance(lesson, LessonCancelled) and not lesson.chargeable and known is not None:
        await _refund_excused(session, known, lesson, envelope)
    price = await _price(session, lesson) if lesson.chargeable else None
    if lesson.chargeable and price is None:
        log.warning("lesson not charged: no price set", extra={"lesson_id": str(lesson.lesson_id)})
    if price is None:
        if known is not None:  # the next lesson changed: re-check the runway
            await note_if_low(session, known, now=envelope.occurred_at)
        return
    # locked already when known (and nothing else can change it); else created and locked now
    account = known if known is not None else await lock_account(session, key, currency=price.currency)
    if charged is None:  # the account was not locked before the lesson's row: ask now, under the lock
        charged = await lesson_already_charged(session, lesson.lesson_id)
    if charged:  # another event for it came first
        log.info("lesson already charged", extra={"lesson_id": str(lesson.lesson_id), "event": envelope.event_type})
        return
    entry = await post_charge(
        session,
        account,
        kind=CHARGE_KIND[status],
        amount=-price.amount,
        currency=price.currency,
        at=envelope.occurred_at,
        lesson_id=lesson.lesson_id,
        reason=CHARGE_REASON[status],
        source_event_id=envelope.event_id,
    )
    await add_event(
        session,
        PaymentCharged(
            student_id=account.student_id,
            tutor_id=account.tutor_id,
            amount=price.amount,
            currency=price.currency,
            balance_after=entry.balance_after,
            charge_id=entry.id,
            lesson_id=lesson.lesson_id,
            reason=CHARGE_REASON[status],
        ),
    )
    await note_if_low(session, account, now=envelope.occurred_at)


async def _refund_excused(session: AsyncSession, account: Account, lesson: LessonCancelled, envelope: Envelope) -> None:
    """A chargeable cancellation the tutor excused afterwards: give its charge back, once."""
    charge = await session.scalar(
        select(LedgerEntry).where(LedgerEntry.lesson_id == lesson.lesson_id, LedgerEntry.kind == "late_cancel_charge")
    )
    if charge is None:
        return
    given_back = await session.scalar(select(LedgerEntry.id).where(LedgerEntry.refunds_entry_id == charge.id))
    if given_back is not None:
        return
    entry = await post_entry(
        session,
        account,
        kind="correction",
        amount=-charge.amount,
        currency=charge.currency,
        at=envelope.occurred_at,
        refunds_entry_id=charge.id,
        reason="late cancellation excused",
        created_by=lesson.excused_by,
        source_event_id=envelope.event_id,
    )
    await add_event(
        session,
        PaymentRefunded(
            student_id=account.student_id,
            tutor_id=account.tutor_id,
            amount=entry.amount,
            currency=entry.currency,
            balance_after=entry.balance_after,
            refund_id=entry.id,
            charge_id=charge.id,
            reason="late cancellation excused",
        ),
    )


async def _price(session: AsyncSession, lesson: LessonEvent) -> Money | None:
    if lesson.price is not None and lesson.currency is not None:
        return Money(lesson.price, lesson.currency)
    return await price_for(session, lesson.tutor_id, lesson.student_id)
