"""The business metrics move once per event, after the handler's transaction commits: an attempt that
rolls back (and is redelivered) counts nothing, so Grafana's revenue equals the ledger's charges."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY

from services.analytics_service.events import subscriptions
from services.analytics_service.metrics import Metrics
from services.analytics_service.tests.scenario import practice
from services.analytics_service.tests.test_delivery_order import Delivery
from shared.db import Database
from shared.events.consumer import EventConsumer
from shared.events.envelope import Envelope

LABEL = "analytics-service-metrics-once"


@dataclass
class FirstAttempt(Delivery):
    @property
    def final_attempt(self) -> bool:
        return False


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": LABEL, **labels}) or 0.0


async def test_a_rolled_back_attempt_counts_nothing_and_the_redelivery_counts_once(
    spare_databases: tuple[str, str],
) -> None:
    events = practice(seed=7).events
    completed = next(e for e in events if e.event_type == "lesson.completed")
    charged = next(e for e in events if e.event_type == "payment.charged")
    handlers = subscriptions(Metrics(LABEL))
    failing_once = {completed.event_id, charged.event_id}

    def flaky(event_type: str):  # the real handler, then a failure before the commit (first attempt only)
        async def handle(session, envelope: Envelope) -> None:
            await handlers[event_type](session, envelope)
            if envelope.event_id in failing_once:
                failing_once.discard(envelope.event_id)
                raise RuntimeError("the transaction fails after the handler ran")

        return handle

    db = Database(spare_databases[0], service="analytics-service", pool_size=1, max_overflow=0)
    consumer = EventConsumer(
        db,
        bus=None,  # type: ignore[arg-type]
        service="analytics-service",
        handlers={event_type: flaky(event_type) for event_type in handlers},
        retry_backoff=(0.0, 0.0),
    )
    currency = charged.payload["currency"]
    try:
        for envelope in (completed, charged):
            first = FirstAttempt(envelope.to_json(), envelope.event_type)
            await consumer.handle(first)
            assert first.outcome == "retry"
        assert counted("analytics_lessons_completed_total") == 0
        assert counted("analytics_revenue_minor_units_total", currency=currency) == 0

        for envelope in (completed, charged, completed):  # the redelivery, then a duplicate
            again = Delivery(envelope.to_json(), envelope.event_type, attempt=2)
            await consumer.handle(again)
            assert again.outcome == "ack"
    finally:
        await db.dispose()
    assert counted("analytics_lessons_completed_total") == 1
    assert counted("analytics_revenue_minor_units_total", currency=currency) == charged.payload["amount"]
