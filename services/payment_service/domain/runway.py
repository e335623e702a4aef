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
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.prices import price_for, price_query
from services.payment_service.models import Account, Price, ScheduledLesson
from shared.events.catalogue import BalanceLow
from shared.events.outbox import add_event

MAX_RUNWAY_LESSONS = 500  # upcoming lessons looked at; a schedule longer than this is not a runway question


@dataclass(frozen=True)
class Runway:
    lessons_covered: int
    covered_until: datetime | None
    scheduled_covered: int  # of the scheduled lessons only (what a top-up "pays for")
    covers_next: bool  # the next scheduled lesson is paid for (no lesson: the balance is not negative)


def _upcoming(account: Account, now: datetime, *columns: Any) -> Select[Any]:
    """The account's scheduled lessons from ``now`` on, in the order the balance pays for them."""
    return (
        select(*columns)
        .where(
            ScheduledLesson.tutor_id == account.tutor_id,
            ScheduledLesson.student_id == account.student_id,
            ScheduledLesson.status == "scheduled",
            ScheduledLesson.starts_at >= now,
        )
        .order_by(ScheduledLesson.starts_at, ScheduledLesson.lesson_id)
    )


async def runway(session: AsyncSession, account: Account, *, now: datetime) -> Runway:
    default = await price_for(session, account.tutor_id, account.student_id)
    default_amount = default.amount if default and default.currency == account.currency else None
    upcoming = (await session.scalars(_upcoming(account, now, ScheduledLesson).limit(MAX_RUNWAY_LESSONS))).all()
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


async def covers_next(session: AsyncSession, account: Account, *, now: datetime) -> bool:
    """``runway(...).covers_next`` in one statement: only the next scheduled lesson and the price
    (the student's, else the tutor's default) matter to it, not the whole schedule."""
    upcoming = _upcoming(account, now, ScheduledLesson.lesson_id).limit(1)
    price = price_query(account.tutor_id, account.student_id)
    row = (
        await session.execute(
            select(
                upcoming.with_only_columns(ScheduledLesson.lesson_id).scalar_subquery(),
                upcoming.with_only_columns(ScheduledLesson.price).scalar_subquery(),
                upcoming.with_only_columns(ScheduledLesson.currency).scalar_subquery(),
                price.with_only_columns(Price.amount).scalar_subquery(),
                price.with_only_columns(Price.currency).scalar_subquery(),
            )
        )
    ).one()
    next_lesson, own_amount, own_currency, default_amount, default_currency = row
    if next_lesson is None:
        return account.balance >= 0
    if own_amount is not None and own_currency == account.currency:
        cost = own_amount
    elif default_amount is not None and default_currency == account.currency:
        cost = default_amount
    else:  # no price known yet: only a debt is something to say
        return account.balance >= 0
    return account.balance >= cost


async def say_if_low(session: AsyncSession, account: Account, *, now: datetime) -> Runway:
    """Emit ``balance.low`` when the balance has just stopped covering the next lesson (account locked)."""
    current = await runway(session, account, now=now)
    await _say(session, account, current, covered=current.covers_next)
    return current


async def note_if_low(session: AsyncSession, account: Account, *, now: datetime) -> None:
    """:func:`say_if_low` for the event handlers, which do not need the runway back: the whole
    runway is walked only when ``balance.low`` is said (it is in the event)."""
    covered = await covers_next(session, account, now=now)
    if not covered and not account.low_notified:
        await _say(session, account, await runway(session, account, now=now), covered=False)
        return
    await _say(session, account, None, covered=covered)


async def _say(session: AsyncSession, account: Account, current: Runway | None, *, covered: bool) -> None:
    if covered:
        account.low_notified = False
    elif not account.low_notified:
        assert current is not None
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
