"""How many SQL statements one ``lesson.completed`` charge costs payment-service: a budget, not a timing.

The event path's sustained rate is bounded by the CPU the consumers spend per event, most of it
building and running statements (docs/performance.md, the event-path benchmark). This counts the
statements of one charge as the consumer runs it (inbox row and handler in one transaction), so a
change that adds a round trip to the hot path has to say so here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from fastapi import FastAPI

from services.payment_service.tests.conftest import Api, completed, envelope, ledger_matches_accounts, scheduled
from shared.events.envelope import Envelope
from shared.testing.statements import statements_sent

# one charge with a scheduled lesson ahead: the inbox row, the account lock, the schedule ahead with the
# prices, the lesson's row (which also says whether it is charged already), the charge with the balance,
# and at the commit payment.charged in the outbox with its NOTIFY (14 before 2026-11-26, then 7)
CHARGE_BUDGET = 6


async def _consume(app: FastAPI, event_: Envelope) -> bool:
    consumer = app.state.consumer
    [first_time] = await consumer._apply_in_one_transaction([event_])
    return first_time


async def test_one_lesson_completed_charge_stays_within_its_statement_budget(
    api: Api, app: FastAPI, db: asyncpg.Pool
) -> None:
    family = api.family()
    await api.set_price(family.tutor, 2500)
    await api.top_up(family.tutor, family.student.id, 10_000)
    now = datetime.now(UTC)
    ahead = scheduled(family, starts_at=now + timedelta(days=7))
    assert await _consume(app, envelope(ahead))
    fields = {"starts_at": now - timedelta(hours=1), "price": 2500, "currency": "RUB"}
    charge = completed(family, **fields)
    # the lesson was scheduled first, as lesson-service tells it
    assert await _consume(app, envelope(scheduled(family, **{**fields, "lesson_id": charge.lesson_id})))

    with statements_sent(app.state.db.engine, this_task_only=True) as seen:
        assert await _consume(app, envelope(charge))

    amounts = await db.fetch("SELECT amount FROM ledger_entries WHERE lesson_id = $1", charge.lesson_id)
    assert [r["amount"] for r in amounts] == [-2500]  # it did charge: the count is of a real charge
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == 10_000 - 2500
    await ledger_matches_accounts(db)
    assert len(seen) <= CHARGE_BUDGET, "\n".join(s.splitlines()[0][:120] for s in seen)
