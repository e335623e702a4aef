"""The outbox: an event is written in the same transaction as the change it describes (DESIGN.md §5).

Request handlers never publish. ``add_event`` inserts the envelope into
``outbox_events`` inside the caller's transaction and queues a NOTIFY, which
PostgreSQL delivers only if that transaction commits; the relay then publishes.
A rolled-back change therefore leaves no event behind, and a committed one
cannot be lost to a broker outage.

One NOTIFY per transaction is enough (PostgreSQL folds identical ones into one
anyway, and the relay publishes every pending row when woken), so a transaction
adding several events — a handler awarding XP, a level and an achievement — sends
it with the first only: one database round trip less for each further event. A
NOTIFY sent inside a savepoint that is rolled back is gone, so after that the next
event sends it again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import context
from shared.db import first_time_in_transaction
from shared.events.catalogue import EventPayload
from shared.events.envelope import Envelope
from shared.tables import outbox_events

NOTIFY_CHANNEL = "outbox_events"

# built once and run with parameters: a statement built per call has its SQLAlchemy cache key
# computed anew each time; these are on every event's path
_ADD = outbox_events.insert().values(
    # clock_timestamp(), unlike now(), differs between rows of one transaction,
    # so events added together are published in the order they were added
    created_at=func.clock_timestamp()
)
_NOTIFY = select(func.pg_notify(NOTIFY_CHANNEL, ""))


async def add_event(session: AsyncSession, payload: EventPayload, *, occurred_at: datetime | None = None) -> Envelope:
    """Add ``payload`` as an event to the outbox in ``session``'s transaction; returns its envelope.

    The producer is ``session.info["service"]`` (set by ``shared.db.Database``);
    the correlation ID is the current request's (or a new one), and the causation
    ID is the event being handled, if any, so events emitted by handlers chain.
    """
    producer = session.info.get("service")
    if not producer:
        raise RuntimeError("session.info['service'] is not set: open sessions through shared.db.Database")
    envelope = Envelope.wrap(
        payload,
        producer=producer,
        correlation_id=context.current_correlation_id(),
        causation_id=context.causation_id.get(),
        occurred_at=occurred_at,
    )
    await session.execute(
        _ADD, {"id": envelope.event_id, "event_type": envelope.event_type, "envelope": envelope.to_dict()}
    )
    if first_time_in_transaction(session, ("notify", NOTIFY_CHANNEL)):
        await session.execute(_NOTIFY)
    return envelope
