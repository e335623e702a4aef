"""payment-service's part of a seeded world (``shared/seeding.py``): the tutors' default prices, every
ledger row with its account, the lessons it learnt from lesson events (for the runway), its access links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.charges import CHARGE_KIND, CHARGE_REASON
from services.payment_service.models import Account, LedgerEntry, Price, ScheduledLesson
from shared.events.catalogue import LessonCompleted, LessonMissed, PaymentCharged, PaymentReceived
from shared.events.envelope import Envelope
from shared.seeding import LedgerRow, World, access_link_rows, copy_rows
from shared.tables import access_links

PRODUCER = "payment-service"
_STATUS_OF_CHARGE = {kind: status for status, kind in CHARGE_KIND.items()}
_LESSON_EVENT = {"completed": LessonCompleted.event_type, "missed": LessonMissed.event_type}


def _entry(world: World, row: LedgerRow) -> dict[str, Any]:
    charge = row.kind != "top_up"
    status = _STATUS_OF_CHARGE.get(row.kind)
    return {
        "id": row.id,
        "tutor_id": row.tutor_id,
        "student_id": row.student_id,
        "kind": row.kind,
        "amount": row.amount,
        "currency": world.currency,
        "balance_after": row.balance_after,
        "method": row.method,
        "lessons": row.lessons,
        "lesson_id": row.lesson_id,
        "reason": CHARGE_REASON[status] if status else None,
        "created_by": None if charge else row.tutor_id,
        "source_event_id": world.event_id(_LESSON_EVENT[status], row.lesson_id) if status else None,
        "created_at": row.at,
    }


def _accounts(world: World) -> Iterator[dict[str, Any]]:
    rows_of: dict[tuple[Any, Any], list[LedgerRow]] = {}
    for row in world.ledger:
        rows_of.setdefault((row.tutor_id, row.student_id), []).append(row)
    for (tutor_id, student_id), rows in rows_of.items():
        balance = rows[-1].balance_after
        yield {
            "tutor_id": tutor_id,
            "student_id": student_id,
            "currency": world.currency,
            "balance": balance,
            # balance.low was said when the balance stopped covering the next lesson
            "low_notified": balance < world.prices[tutor_id],
            "created_at": rows[0].at,
            "updated_at": rows[-1].at,
        }


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    prices = (
        {
            "id": world.event_id("price", tutor.id),
            "tutor_id": tutor.id,
            "student_id": None,
            "amount": world.prices[tutor.id],
            "currency": world.currency,
            "updated_at": tutor.created_at,
        }
        for tutor in world.tutors
    )
    scheduled = (
        {
            "lesson_id": x.id,
            "tutor_id": x.tutor_id,
            "student_id": x.student_id,
            "starts_at": x.starts_at,
            "ends_at": x.ends_at,
            "lesson_type": "regular",
            "price": None,
            "currency": None,
            "status": x.status,
            "observed_at": x.ends_at if x.held else x.created_at,
        }
        for x in world.lessons
    )
    return {
        "prices": await copy_rows(session, Price.__table__, prices),
        "accounts": await copy_rows(session, Account.__table__, _accounts(world)),
        # in each account's order: seq (an identity) numbers them as they come
        "ledger_entries": await copy_rows(session, LedgerEntry.__table__, (_entry(world, r) for r in world.ledger)),
        "scheduled_lessons": await copy_rows(session, ScheduledLesson.__table__, scheduled),
        "access_links": await copy_rows(session, access_links, access_link_rows(world)),
    }


def events(world: World) -> Iterator[Envelope]:
    """``payment.received`` for every top-up, ``payment.charged`` for every charge."""
    for row in world.ledger:
        payload: PaymentReceived | PaymentCharged
        if row.kind == "top_up":
            payload = PaymentReceived(
                student_id=row.student_id,
                tutor_id=row.tutor_id,
                amount=row.amount,
                currency=world.currency,
                balance_after=row.balance_after,
                payment_id=row.id,
                method=row.method or "cash",
                lessons_covered=row.lessons_covered,
            )
        else:
            payload = PaymentCharged(
                student_id=row.student_id,
                tutor_id=row.tutor_id,
                amount=-row.amount,
                currency=world.currency,
                balance_after=row.balance_after,
                charge_id=row.id,
                lesson_id=row.lesson_id,
                reason=CHARGE_REASON[_STATUS_OF_CHARGE[row.kind]],
            )
        yield world.envelope(payload, row.id, producer=PRODUCER, occurred_at=row.at)
