"""THE test: the same events shuffled and 10% duplicated give the same reports as in-order delivery.

Both deliveries go through the real inbox consumer (``EventConsumer.handle``, the code the broker
calls) into their own PostgreSQL database; then the read models, every report, and a rebuild
from ``event_log`` are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.analytics_service.domain import reports, store
from services.analytics_service.events import subscriptions
from services.analytics_service.metrics import Metrics
from services.analytics_service.tests.conftest import read_models
from services.analytics_service.tests.scenario import Practice, practice, shuffled_with_duplicates
from shared.db import Database
from shared.events.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.testing.service import db_pool


@dataclass
class Delivery:
    """One delivery of one message, as the bus hands it to the consumer."""

    body: bytes
    routing_key: str
    attempt: int = 1
    outcome: str = ""

    @property
    def final_attempt(self) -> bool:
        return True

    async def ack(self) -> None:
        self.outcome = "ack"

    async def retry(self) -> None:
        self.outcome = "retry"

    async def dead_letter(self) -> None:
        self.outcome = "dead_letter"


async def deliver(database_url: str, events: list[Envelope]) -> None:
    db = Database(database_url, service="analytics-service", pool_size=1, max_overflow=0)
    consumer = EventConsumer(
        db,
        bus=None,
        service="analytics-service",
        handlers=subscriptions(Metrics("analytics-service-test")),  # type: ignore[arg-type]
    )
    try:
        for envelope in events:
            delivery = Delivery(envelope.to_json(), envelope.event_type)
            await consumer.handle(delivery)
            assert delivery.outcome == "ack", envelope
    finally:
        await db.dispose()


async def all_reports(database_url: str, p: Practice) -> dict[str, Any]:
    db = Database(database_url, service="analytics-service", pool_size=1, max_overflow=0)
    first, last = date(2026, 9, 1), date(2026, 12, 31)
    try:
        async with db.transaction() as session:
            tz = await reports.timezone_of(session, p.tutor_id, "Europe/Moscow")
            return {
                "timezone": tz,
                "summary": await reports.summary(session, p.tutor_id, tz, first, last),
                "by_day": await reports.income(session, p.tutor_id, tz, first, last, "day"),
                "by_month": await reports.income(session, p.tutor_id, tz, first, last, "month"),
                "progress": [await reports.progress(session, s, tz, first, last) for s in p.student_ids],
            }
    finally:
        await db.dispose()


async def snapshot(database_url: str) -> dict[str, Any]:
    async with db_pool(database_url) as pool:
        return await read_models(pool)


async def rebuild(database_url: str) -> int:
    db = Database(database_url, service="analytics-service", pool_size=1, max_overflow=0)
    try:
        async with db.transaction() as session:
            return await store.rebuild(session)
    finally:
        await db.dispose()


async def test_shuffled_and_duplicated_events_give_the_same_reports_as_in_order(
    spare_databases: tuple[str, str],
) -> None:
    in_order_db, shuffled_db = spare_databases
    p = practice(seed=7)
    delivered = shuffled_with_duplicates(p.events, seed=11)
    assert len(delivered) > len(p.events) and delivered != p.events

    await deliver(in_order_db, p.events)
    await deliver(shuffled_db, delivered)

    expected = await all_reports(in_order_db, p)
    assert expected["timezone"] == p.timezone  # the later user.updated wins
    assert expected["summary"]["income"] == [{"currency": "RUB", "amount": p.charged}]
    assert sum(row["income"] for row in expected["by_day"]) == p.charged
    assert await all_reports(shuffled_db, p) == expected
    assert await snapshot(shuffled_db) == await snapshot(in_order_db)

    # and the event log holds each event once, whichever way it came
    async with db_pool(shuffled_db) as pool:
        assert await pool.fetchval("SELECT count(*) FROM event_log") == len(p.events)


async def test_a_rebuild_from_the_event_log_equals_the_models_built_event_by_event(
    spare_databases: tuple[str, str],
) -> None:
    database, _ = spare_databases
    p = practice(seed=3)
    await deliver(database, shuffled_with_duplicates(p.events, seed=5))
    built = await snapshot(database)
    reported = await all_reports(database, p)

    assert await rebuild(database) == len(p.events)
    assert await snapshot(database) == built
    assert await all_reports(database, p) == reported
