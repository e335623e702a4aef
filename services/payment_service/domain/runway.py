"""The balance runway and ``balance.low``.

Runway: walk the student's upcoming scheduled lessons with the tutor in start order, paying
each (its own price, else the student's, else the tutor's default) from the balance while it
lasts. ``covered_until`` is the start of the last scheduled lesson paid for; once the schedule
runs out, what is left still covers ``remaining // price`` lessons not scheduled yet.

``balance.low`` is said when the balance stops covering the next scheduled lesson (or, with
nothing scheduled, goes below zero): once per crossing. The account remembers it said so
(``low_notified``) until the balance covers the next lesson again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.prices import price_for
from services.payment_service.models import Account, ScheduledLesson
from shared.events.catalogue import BalanceLow
from shared.events.outbox import add_event

MAX_RUNWAY_LESSONS = 500  # upcoming lessons looked at; a schedule longer than this is not a runway question


@dataclass(frozen=True)
class Runway:
    lessons_covered: int
    covered_until: datetime | None
    scheduled_covered: int  # of the scheduled lessons only (what a top-up "pays for")
    covers_next: bool  # the next scheduled lesson is paid for (no lesson: the balance is not negative)


async def runway(session: AsyncSession, account: Account, *, now: datetime) -> Runway:
    default = await price_for(session, account.tutor_id, account.student_id)
    default_amount = default.amount if default and default.currency == account.currency else None
    upcoming = (
        await session.scalars(
            select(ScheduledLesson)
            .where(
                ScheduledLesson.tutor_id == account.tutor_id,
                ScheduledLesson.student_id == account.student_id,
                ScheduledLesson.status == "scheduled",
                ScheduledLesson.starts_at >= now,
            )
            .order_by(ScheduledLesson.starts_at, ScheduledLesson.lesson_id)
            .limit(MAX_RUNWAY_LESSONS)
        )
    ).all()
    remaining, covered, until = account.balance, 0, None
    covers_next = account.balance >= 0 if not upcoming else False
    for position, lesson in enumerate(upcoming):
        own = lesson.price if lesson.price is not None and lesson.currency == account.currency else None
        price = own if own is not None else default_amount
        if price is None:  # no price known yet: nothing to say about coverage beyond a debt
            covers_next = covers_next or (position == 0 and account.balance >= 0)
            break
        if remaining < price:
            break
        remaining -= price
        covered += 1
        until = lesson.starts_at
        if position == 0:
            covers_next = True
    scheduled_covered = covered
    if covered == len(upcoming) and default_amount and remaining > 0:
        covered += remaining // default_amount
    return Runway(covered, until, scheduled_covered, covers_next)


async def say_if_low(session: AsyncSession, account: Account, *, now: datetime) -> Runway:
    """Emit ``balance.low`` when the balance has just stopped covering the next lesson (account locked)."""
    current = await runway(session, account, now=now)
    if current.covers_next:
        account.low_notified = False
    elif not account.low_notified:
        account.low_notified = True
        await add_event(
            session,
            BalanceLow(
                student_id=account.student_id,
                tutor_id=account.tutor_id,
                balance=account.balance,
                currency=account.currency,
                lessons_covered=current.lessons_covered,
                covered_until=current.covered_until,
            ),
        )
    await session.flush()
    return current
