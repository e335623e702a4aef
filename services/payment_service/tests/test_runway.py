"""The balance runway (lessons covered, until when) from the lessons the events told about,
and balance.low once per crossing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import asyncpg

from services.payment_service.domain.prices import Money
from services.payment_service.domain.runway import Runway, next_is_covered, walk
from services.payment_service.tests.conftest import (
    Api,
    completed,
    envelope,
    lesson_fields,
    publish_and_wait,
    scheduled,
)
from shared.events.catalogue import LessonCancelled, LessonRescheduled


def _at(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


async def test_the_runway_follows_the_schedule(api: Api, rabbit_url: str, db: asyncpg.Pool) -> None:
    family = api.family()
    await api.set_price(family.tutor, 1000)
    await api.top_up(family.tutor, family.student.id, 3500)
    past = scheduled(family, starts_at=_at(-2))  # a lesson in the past is not ahead of the balance
    ahead = [scheduled(family, starts_at=_at(day)) for day in (1, 2, 3, 4)]
    await publish_and_wait(rabbit_url, db, *(envelope(lesson) for lesson in (past, *ahead)))

    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert balance["lessons_covered"] == 3
    assert datetime.fromisoformat(balance["covered_until"]) == ahead[2].starts_at

    # the third lesson moves after the fourth: the third one paid for is now the fourth
    moved = LessonRescheduled(
        **{**ahead[2].model_dump(), "starts_at": _at(10), "ends_at": _at(10) + timedelta(hours=1)},
        previous_starts_at=ahead[2].starts_at,
        previous_ends_at=ahead[2].ends_at,
    )
    await publish_and_wait(rabbit_url, db, envelope(moved))
    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert datetime.fromisoformat(balance["covered_until"]) == ahead[3].starts_at

    # a free cancellation takes a lesson off the schedule; an override price counts as it is
    cancelled = LessonCancelled(
        **{**ahead[0].model_dump(), "chargeable": False},
        cancelled_by=uuid.UUID(family.tutor.id),
        cancelled_by_role="tutor",
    )
    dear = scheduled(family, starts_at=_at(1.5), price=2500, currency="RUB")
    await publish_and_wait(rabbit_url, db, envelope(cancelled), envelope(dear))
    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert (balance["balance"], balance["lessons_covered"]) == (3500, 2)  # 2500 (dear) + 1000 (day 2)
    assert datetime.fromisoformat(balance["covered_until"]) == ahead[1].starts_at


async def test_without_lessons_the_balance_is_counted_in_lessons_at_the_students_price(api: Api) -> None:
    family = api.family()
    await api.top_up(family.tutor, family.student.id, 4999)
    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert (balance["lessons_covered"], balance["covered_until"]) == (0, None)  # no price known
    await api.set_price(family.tutor, 1000, family.student.id)
    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert (balance["lessons_covered"], balance["covered_until"]) == (4, None)


async def _lows(db: asyncpg.Pool, student_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT envelope->'payload'->>'balance' AS balance FROM outbox_events"
        " WHERE event_type = 'balance.low' AND envelope->'payload'->>'student_id' = $1 ORDER BY created_at",
        student_id,
    )
    return [r["balance"] for r in rows]


async def test_balance_low_is_said_once_per_crossing(api: Api, rabbit_url: str, db: asyncpg.Pool) -> None:
    family = api.family()
    await api.set_price(family.tutor, 1000)
    await api.top_up(family.tutor, family.student.id, 1500)
    first, second = scheduled(family, starts_at=_at(1)), scheduled(family, starts_at=_at(2))
    await publish_and_wait(rabbit_url, db, envelope(first), envelope(second))
    assert await _lows(db, family.student.id) == []  # 1500 covers the next lesson

    done = completed(family, **{k: v for k, v in first.model_dump().items() if k in lesson_fields(family)})
    await publish_and_wait(rabbit_url, db, envelope(done))
    assert await _lows(db, family.student.id) == ["500"]  # 500 does not cover the next one

    third = scheduled(family, starts_at=_at(3))
    await publish_and_wait(rabbit_url, db, envelope(third))
    await api.top_up(family.tutor, family.student.id, 100)
    assert await _lows(db, family.student.id) == ["500"]  # still low: not said again

    await api.top_up(family.tutor, family.student.id, 1900)  # 2500: covered again, re-armed
    for lesson in (second, third):
        fields = {k: v for k, v in lesson.model_dump().items() if k in lesson_fields(family)}
        await publish_and_wait(rabbit_url, db, envelope(completed(family, **fields)))
    assert await _lows(db, family.student.id) == ["500"]  # 500 left, nothing scheduled, no debt
    await publish_and_wait(rabbit_url, db, envelope(completed(family)))  # an unscheduled lesson: a debt
    assert await _lows(db, family.student.id) == ["500", "-500"]


async def test_a_top_up_says_how_many_scheduled_lessons_it_pays_for(
    api: Api, rabbit_url: str, db: asyncpg.Pool
) -> None:
    family = api.family()
    await api.set_price(family.tutor, 1000)
    await publish_and_wait(rabbit_url, db, *(envelope(scheduled(family, starts_at=_at(day))) for day in (1, 2, 3)))
    await api.top_up(family.tutor, family.student.id, 1500)  # pays for one
    await api.top_up(family.tutor, family.student.id, 5000)  # the other two; the rest is not scheduled yet
    covered = await db.fetch(
        "SELECT envelope->'payload'->>'lessons_covered' AS n FROM outbox_events"
        " WHERE event_type = 'payment.received' AND envelope->'payload'->>'student_id' = $1 ORDER BY created_at",
        family.student.id,
    )
    assert [r["n"] for r in covered] == ["1", "2"]
    balance = (await api.balance(family.student, family.student.id)).json()
    assert (balance["balance"], balance["lessons_covered"]) == (6500, 6)  # 3 scheduled + 3500 // 1000


def test_a_lesson_costs_its_own_price_in_the_accounts_currency_else_the_default() -> None:
    """walk and next_is_covered price a scheduled lesson by one rule: its own price when it is in the
    account's currency, else the default (the student's price, else the tutor's) in that currency, else
    nothing is known yet (the walk stops; only a debt is uncovered)."""
    day = datetime(2026, 12, 1, 10, tzinfo=UTC)

    def lesson(price: int | None, currency: str | None, days: int = 0) -> SimpleNamespace:
        return SimpleNamespace(price=price, currency=currency, starts_at=day + timedelta(days=days))

    rub = Money(1000, "RUB")
    own_rub, own_usd, none_own = lesson(600, "RUB"), lesson(20, "USD", 1), lesson(None, None, 2)
    # 600 (its own) + 1000 (the default, not its USD price) + 1000 (the default) = 2600
    assert walk(2600, "RUB", [own_rub, own_usd, none_own], rub) == Runway(3, none_own.starts_at, 3, True)
    assert walk(2599, "RUB", [own_rub, own_usd, none_own], rub) == Runway(2, own_usd.starts_at, 2, True)
    # a default in another currency is no price: the walk stops at the first lesson without its own
    assert walk(5000, "RUB", [own_rub, own_usd], Money(50, "USD")) == Runway(1, own_rub.starts_at, 1, True)
    # nothing scheduled: whole lessons at the default, and covered unless in debt
    assert walk(2500, "RUB", [], rub) == Runway(2, None, 0, True)

    assert next_is_covered(600, "RUB", Money(600, "RUB"), rub, scheduled=True)
    assert not next_is_covered(600, "RUB", Money(6, "USD"), rub, scheduled=True)  # its USD price: the default
    assert next_is_covered(0, "RUB", None, Money(50, "USD"), scheduled=True)  # no price known: not a debt
    assert not next_is_covered(-1, "RUB", None, None, scheduled=True)
    assert not next_is_covered(-1, "RUB", None, rub) and next_is_covered(0, "RUB", None, rub)
