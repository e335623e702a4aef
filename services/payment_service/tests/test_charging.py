"""Lesson events charge the balance: each lesson exactly once, whatever is duplicated."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from fastapi import FastAPI

from services.payment_service.app import build_app
from services.payment_service.settings import PaymentServiceSettings
from services.payment_service.tests.conftest import (
    Api,
    completed,
    consuming,
    envelope,
    ledger_matches_accounts,
    lesson_fields,
    publish_and_wait,
)
from shared.events.catalogue import LessonCancelled, LessonMissed


async def _charges(db: asyncpg.Pool, lesson_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch("SELECT kind, amount FROM ledger_entries WHERE lesson_id = $1", lesson_id)


async def test_a_completed_lesson_is_charged_once_even_when_the_event_is_duplicated(
    api: Api, rabbit_url: str, db: asyncpg.Pool
) -> None:
    family = api.family()
    await api.set_price(family.tutor, 2500)
    await api.top_up(family.tutor, family.student.id, 10_000)
    lesson = completed(family)
    event = envelope(lesson)
    # the same event published twice, and a second event about the same lesson (another producer retry)
    again = envelope(lesson)
    await publish_and_wait(rabbit_url, db, event, event, again)

    assert [tuple(r) for r in await _charges(db, lesson.lesson_id)] == [("lesson_charge", -2500)]
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == 7500
    charged = await db.fetch(
        "SELECT envelope->'payload'->>'amount' AS amount FROM outbox_events"
        " WHERE event_type = 'payment.charged' AND envelope->'payload'->>'lesson_id' = $1",
        str(lesson.lesson_id),
    )
    assert [r["amount"] for r in charged] == ["2500"]
    await ledger_matches_accounts(db)


async def test_the_lessons_own_price_wins_then_the_students_then_the_default(
    api: Api, rabbit_url: str, db: asyncpg.Pool
) -> None:
    family = api.family()
    await api.set_price(family.tutor, 2000)
    by_default, with_override = completed(family), completed(family, price=3100, currency="RUB")
    await publish_and_wait(rabbit_url, db, envelope(by_default), envelope(with_override))
    await api.set_price(family.tutor, 1800, family.student.id)
    by_student = completed(family)
    await publish_and_wait(rabbit_url, db, envelope(by_student))
    amounts = [
        (await _charges(db, lesson.lesson_id))[0]["amount"] for lesson in (by_default, with_override, by_student)
    ]
    assert amounts == [-2000, -3100, -1800]
    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert (balance["balance"], balance["in_debt"]) == (-6900, True)  # a debt is reported as such


async def test_late_cancellations_and_no_shows_are_charged_when_chargeable(
    api: Api, rabbit_url: str, db: asyncpg.Pool
) -> None:
    family = api.family()
    await api.set_price(family.tutor, 1000)
    tutor = uuid.UUID(family.tutor.id)
    free = LessonCancelled(**lesson_fields(family, chargeable=False), cancelled_by=tutor, cancelled_by_role="tutor")
    late = LessonCancelled(**lesson_fields(family), cancelled_by=tutor, cancelled_by_role="student")
    missed = LessonMissed(**lesson_fields(family))
    excused_missed = LessonMissed(**lesson_fields(family, chargeable=False))
    await publish_and_wait(rabbit_url, db, *(envelope(e) for e in (free, late, missed, excused_missed)))
    assert await _charges(db, free.lesson_id) == [] and await _charges(db, excused_missed.lesson_id) == []
    assert [tuple(r) for r in await _charges(db, late.lesson_id)] == [("late_cancel_charge", -1000)]
    assert [tuple(r) for r in await _charges(db, missed.lesson_id)] == [("no_show_charge", -1000)]


async def test_an_excused_late_cancellation_is_given_back_once(api: Api, rabbit_url: str, db: asyncpg.Pool) -> None:
    family = api.family()
    await api.set_price(family.tutor, 1000)
    fields = lesson_fields(family)
    tutor = uuid.UUID(family.tutor.id)
    charged = LessonCancelled(**fields, cancelled_by=tutor, cancelled_by_role="student")
    excused = LessonCancelled(
        **{**fields, "chargeable": False}, cancelled_by=tutor, cancelled_by_role="student", excused_by=tutor
    )
    first_at = datetime.now(UTC)
    await publish_and_wait(rabbit_url, db, envelope(charged, occurred_at=first_at))
    await publish_and_wait(
        rabbit_url, db, envelope(excused, occurred_at=first_at + timedelta(minutes=5)), envelope(excused)
    )
    # a stale copy of the chargeable event, arriving late, changes nothing
    await publish_and_wait(rabbit_url, db, envelope(charged, occurred_at=first_at))
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == 0
    rows = await db.fetch(
        "SELECT kind, amount FROM ledger_entries WHERE student_id = $1::uuid ORDER BY seq", family.student.id
    )
    assert [tuple(r) for r in rows] == [("late_cancel_charge", -1000), ("correction", 1000)]
    await ledger_matches_accounts(db)


async def test_a_lesson_without_any_price_is_not_charged(api: Api, rabbit_url: str, db: asyncpg.Pool) -> None:
    family = api.family()
    lesson = completed(family)
    await publish_and_wait(rabbit_url, db, envelope(lesson))
    assert await _charges(db, lesson.lesson_id) == []


async def test_fifty_concurrent_top_ups_and_charges_end_exact(
    api: Api, app: FastAPI, client: httpx.AsyncClient, rabbit_url: str, db: asyncpg.Pool
) -> None:
    """25 top-ups through the API and 25 charges through the event handler at once, on one
    balance: every row applied once, the balance exact, each balance_after the running sum."""
    family = api.family()
    await api.set_price(family.tutor, 300)
    await api.top_up(family.tutor, family.student.id, 1)  # the account exists before the race
    handler = app.state.consumer._handlers["lesson.completed"]
    lessons = [completed(family) for _ in range(25)]

    async def charge(lesson: object) -> None:
        async with app.state.db.transaction() as session:
            await handler(session, envelope(lesson))  # type: ignore[arg-type]

    results = await asyncio.gather(
        *(api.top_up(family.tutor, family.student.id, 1000) for _ in range(25)),
        *(charge(lesson) for lesson in lessons),
    )
    assert all(r.status_code == 201 for r in results[:25])
    expected = 1 + 25 * 1000 - 25 * 300
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == expected
    count = await db.fetchval("SELECT count(*) FROM ledger_entries WHERE student_id = $1::uuid", family.student.id)
    assert count == 51
    await ledger_matches_accounts(db)


async def test_two_instances_consuming_duplicates_charge_each_lesson_once(
    api: Api, settings: PaymentServiceSettings, app: FastAPI, rabbit_url: str, db: asyncpg.Pool
) -> None:
    """A second instance shares the service's queue: duplicates may land on either one."""
    family = api.family()
    await api.set_price(family.tutor, 100)
    second = build_app(settings)
    async with second.router.lifespan_context(second):
        await consuming(second)
        lessons = [completed(family) for _ in range(20)]
        events = [envelope(lesson) for lesson in lessons]
        retries = [envelope(lesson) for lesson in lessons]  # another event id about the same lesson
        await publish_and_wait(rabbit_url, db, *events, *events, *retries)
    rows = await db.fetch(
        "SELECT lesson_id, count(*) AS n FROM ledger_entries WHERE student_id = $1::uuid GROUP BY lesson_id",
        family.student.id,
    )
    assert len(rows) == 20 and {r["n"] for r in rows} == {1}
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == -2000
    await ledger_matches_accounts(db)
