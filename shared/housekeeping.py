"""Housekeeping: rows of the shared tables that are needed only for a while, deleted by every service.

| table | a row is deleted when | why it is kept that long |
|---|---|---|
| ``outbox_events`` | it was published ``outbox_retention_days`` (7) ago | to look into a delivery; a row not yet published is never deleted |
| ``inbox_events`` | it was received ``inbox_retention_days`` (30) ago | a duplicate comes within minutes (a redelivery, a publish whose relay commit failed); a dead letter moved back was never recorded (its transaction rolled back) |
| ``idempotency_keys`` | it was stored ``idempotency_retention_days`` (7) ago | the bot's offline queue retries a write with the same key while the fleet is away; a key forgotten before a retry would apply the write again |

Without this the three tables grow by every event and every keyed POST, forever. The ages are compared
with the database's clock, which wrote them. Each instance runs the pass (``start``: at start-up and every
``housekeeping_interval_seconds``; 0 turns the loop off): plain DELETEs by age, safe to run at once and
again. Tests call :func:`purge` themselves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Delete, Interval, bindparam, delete, func

from shared.config import ServiceSettings
from shared.db import Database
from shared.metrics import HOUSEKEEPING_DELETED
from shared.scheduling import start_periodic
from shared.tables import idempotency_keys, inbox_events, outbox_events


@dataclass(frozen=True)
class Retention:
    outbox: timedelta
    inbox: timedelta
    idempotency: timedelta

    @classmethod
    def of(cls, settings: ServiceSettings) -> Retention:
        return cls(
            outbox=timedelta(days=settings.outbox_retention_days),
            inbox=timedelta(days=settings.inbox_retention_days),
            idempotency=timedelta(days=settings.idempotency_retention_days),
        )


def _older_than_age(stamp: ColumnElement[datetime]) -> ColumnElement[bool]:
    return stamp < func.now() - bindparam("age", type_=Interval())


# built once, the age a parameter; each with the Retention field that gives its age
_PURGES: dict[str, tuple[Delete, str]] = {
    "outbox_events": (delete(outbox_events).where(_older_than_age(outbox_events.c.published_at)), "outbox"),
    "inbox_events": (delete(inbox_events).where(_older_than_age(inbox_events.c.received_at)), "inbox"),
    "idempotency_keys": (
        delete(idempotency_keys).where(_older_than_age(idempotency_keys.c.created_at)),
        "idempotency",
    ),
}


async def purge(db: Database, retention: Retention) -> dict[str, int]:
    """One pass: each table's rows past their retention deleted, each table in its own transaction (a
    long first clean-up of one does not hold the others); returns how many per table."""
    deleted = {}
    for table, (statement, kept_for) in _PURGES.items():
        async with db.transaction() as session:
            result = await session.execute(statement, {"age": getattr(retention, kept_for)})
        deleted[table] = result.rowcount or 0
        HOUSEKEEPING_DELETED.labels(db.service, table).inc(deleted[table])
    return deleted


def start(db: Database, settings: ServiceSettings) -> asyncio.Task[None] | None:
    """The periodic pass for this instance (None when ``housekeeping_interval_seconds`` is 0)."""
    retention = Retention.of(settings)
    return start_periodic(
        f"{settings.service_name}-housekeeping", settings.housekeeping_interval_seconds, lambda: purge(db, retention)
    )
