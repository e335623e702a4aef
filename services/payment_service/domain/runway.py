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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import CompoundSelect, Row, Select, bindparam, literal, null, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.prices import Money, price_for, price_query
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


class Upcoming(Protocol):
    """A scheduled lesson as the runway sees it (a ``ScheduledLesson``, or a row with these columns)."""

    @property
    def price(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def starts_at(self) -> datetime: ...


@dataclass(frozen=True)
class Ahead:
    """What the runways of several accounts need, read in one statement (``ahead``)."""

    lessons: dict[Any, list[Row[Any]]]  # each account's scheduled lessons from a moment on, in paying order
    prices: dict[Any, Money]  # each pair's price: the student's, else the tutor's default (if either is set)


def _ahead_statement() -> CompoundSelect:
    """The scheduled lessons from ``since`` on of some pairs, and the prices of those pairs (a student's
    own, a tutor's default), tagged by kind; built once (run with the pairs, tutors and students)."""
    lessons = select(
        literal("lesson").label("kind"),
        ScheduledLesson.tutor_id,
        ScheduledLesson.student_id,
        ScheduledLesson.lesson_id,
        ScheduledLesson.starts_at,
        ScheduledLesson.price,
        ScheduledLesson.currency,
    ).where(
        tuple_(ScheduledLesson.tutor_id, ScheduledLesson.student_id).in_(bindparam("pairs", expanding=True)),
        ScheduledLesson.status == "scheduled",
        ScheduledLesson.starts_at >= bindparam("since"),
    )
    prices = select(
        literal("price").label("kind"),
        Price.tutor_id,
        Price.student_id,
        null().label("lesson_id"),
        null().label("starts_at"),
        Price.amount,
        Price.currency,
    ).where(
        Price.tutor_id.in_(bindparam("tutors", expanding=True)),
        or_(Price.student_id.in_(bindparam("students", expanding=True)), Price.student_id.is_(None)),
    )
    return lessons.union_all(prices).order_by("starts_at", "lesson_id")


_AHEAD = _ahead_statement()


async def ahead(session: AsyncSession, keys: Sequence[Any], *, since: datetime) -> Ahead:
    """The scheduled lessons from ``since`` on and the prices of several tutor–student pairs (``keys``:
    objects with ``tutor_id`` and ``student_id``), in one statement."""
    by_pair = {(key.tutor_id, key.student_id): key for key in keys}
    wanted = {
        "pairs": list(by_pair),
        "since": since,
        "tutors": list({tutor_id for tutor_id, _ in by_pair}),
        "students": list({student_id for _, student_id in by_pair}),
    }
    rows = (await session.execute(_AHEAD, wanted)).all()
    found = Ahead({key: [] for key in keys}, {})
    own_prices = {(row.tutor_id, row.student_id): Money(row.price, row.currency) for row in rows if row.kind == "price"}
    for row in rows:
        if row.kind == "lesson":
            found.lessons[by_pair[(row.tutor_id, row.student_id)]].append(row)
    for (tutor_id, student_id), key in by_pair.items():
        price = own_prices.get((tutor_id, student_id)) or own_prices.get((tutor_id, None))
        if price is not None:
            found.prices[key] = price
    return found


async def runway(session: AsyncSession, account: Account, *, now: datetime) -> Runway:
    default = await price_for(session, account.tutor_id, account.student_id)
    upcoming = (await session.scalars(_upcoming(account, now, ScheduledLesson).limit(MAX_RUNWAY_LESSONS))).all()
    return walk(account.balance, account.currency, upcoming, default)


def walk(balance: int, currency: str, upcoming: Sequence[Upcoming], default: Money | None) -> Runway:
    """The runway of ``balance`` over ``upcoming`` (the scheduled lessons from now on, in start order),
    with ``default`` (the student's price, else the tutor's) for a lesson without its own."""
    default_amount = _price_in(currency, None, default)
    upcoming = upcoming[:MAX_RUNWAY_LESSONS]
    remaining, covered, until = balance, 0, None
    for lesson in upcoming:
        price = _price_in(currency, _own_price(lesson), default)
        if price is None or remaining < price:  # no price known yet, or the balance runs out here
            break
        remaining -= price
        covered += 1
        until = lesson.starts_at
    first = upcoming[0] if upcoming else None
    covers_next = next_is_covered(balance, currency, _own_price(first), default, scheduled=first is not None)
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
    default = Money(default_amount, default_currency) if default_amount is not None else None
    own = Money(own_amount, own_currency) if own_amount is not None else None
    return next_is_covered(account.balance, account.currency, own, default, scheduled=next_lesson is not None)


def _own_price(lesson: Upcoming | None) -> Money | None:
    """A scheduled lesson's own price, if it has one."""
    if lesson is None or lesson.price is None or lesson.currency is None:
        return None
    return Money(lesson.price, lesson.currency)


def _price_in(currency: str, own: Money | None, default: Money | None) -> int | None:
    """What a scheduled lesson costs an account in ``currency``: its own price, else ``default`` (the
    student's, else the tutor's); None when neither is known in that currency."""
    for price in (own, default):
        if price is not None and price.currency == currency:
            return price.amount
    return None


def next_is_covered(
    balance: int, currency: str, own: Money | None, default: Money | None, *, scheduled: bool = False
) -> bool:
    """Whether ``balance`` pays for the next scheduled lesson (``scheduled``; ``own``: its own price, if
    any), at its own price else ``default``; with nothing scheduled, or no price known yet, whether it is
    not a debt."""
    price = _price_in(currency, own, default) if scheduled else None
    return balance >= (price or 0)  # nothing scheduled, or no price known yet: only a debt is something to say


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


async def note_if_low_from(
    session: AsyncSession, account: Account, upcoming: Sequence[Upcoming], default: Money | None
) -> None:
    """:func:`note_if_low` from what the caller holds: ``upcoming``, the account's scheduled lessons from
    now on in start order (all there are, read under the account's lock), and the student's price."""
    first = upcoming[0] if upcoming else None
    covered = next_is_covered(
        account.balance, account.currency, _own_price(first), default, scheduled=first is not None
    )
    current = None
    if not covered and not account.low_notified:
        current = walk(account.balance, account.currency, upcoming, default)
    await _say(session, account, current, covered=covered, flush=False)


async def _say(
    session: AsyncSession, account: Account, current: Runway | None, *, covered: bool, flush: bool = True
) -> None:
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
    if flush:
        await session.flush()
