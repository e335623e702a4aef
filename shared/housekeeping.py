"""Housekeeping: rows of the shared tables that are needed only for a while, deleted by every service.

| table | a row is deleted when | why it is kept that long |
|---|---|---|
| ``outbox_events`` | it was published ``outbox_retention_days`` (7) ago | to look into a delivery; a row not yet published is never deleted |
| ``inbox_events`` | it was received ``inbox_retention_days`` (30) ago | a duplicate comes within minutes (a redelivery, a publish whose relay commit failed); a dead letter moved back was never recorded (its transaction rolled back) |
| ``idempotency_keys`` | it was stored ``idempotency_retention_days`` (7) ago | the bot's offline queue retries a write with the same key while the fleet is away; a key forgotten before a retry would apply the write again |

Without this the three tables grow by every event and every keyed POST, forever. The ages are compared
with the database's clock, which wrote them. Each instance runs the pass (``start``: at start-up and every
``housekeeping_interval_seconds``; 0 turns the loop off): plain DELETEs by age, safe to run at once and
again. A service adds purges of its own tables (``create_app(purges=...)``; user-service: expired refresh
tokens and invites). Tests call :func:`purge` themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Delete, Interval, bindparam, delete, func

from shared.config import ServiceSettings
from shared.db import Database
from shared.metrics import HOUSEKEEPING_DELETED
from shared.scheduling import start_periodic
from shared.tables import idempotency_keys, inbox_events, outbox_events


@dataclass(frozen=True)
class Purge:
    """One table's rows deleted once past their age: ``statement`` (built once) takes the age as ``:age``."""

    table: str
    statement: Delete
    age: timedelta


def older_than_age(stamp: ColumnElement[datetime]) -> ColumnElement[bool]:
    """``stamp`` more than ``:age`` before the database's now()."""
    return stamp < func.now() - bindparam("age", type_=Interval())


_OUTBOX = delete(outbox_events).where(older_than_age(outbox_events.c.published_at))  # NULL (pending): never
_INBOX = delete(inbox_events).where(older_than_age(inbox_events.c.received_at))
_IDEMPOTENCY = delete(idempotency_keys).where(older_than_age(idempotency_keys.c.created_at))


def shared_purges(settings: ServiceSettings) -> list[Purge]:
    """The shared tables' purges, with this service's retention settings."""
    return [
        Purge("outbox_events", _OUTBOX, timedelta(days=settings.outbox_retention_days)),
        Purge("inbox_events", _INBOX, timedelta(days=settings.inbox_retention_days)),
        Purge("idempotency_keys", _IDEMPOTENCY, timedelta(days=settings.idempotency_retention_days)),
    ]


async def purge(db: Database, purges: Sequence[Purge]) -> dict[str, int]:
    """One pass: each table's rows past their age deleted, each table in its own transaction (a long first
    clean-up of one does not hold the others); returns how many per table."""
    deleted = {}
    for each in purges:
        async with db.transaction() as session:
            result = await session.execute(each.statement, {"age": each.age})
        deleted[each.table] = result.rowcount or 0
        HOUSEKEEPING_DELETED.labels(db.service, each.table).inc(deleted[each.table])
    return deleted


def start(db: Database, settings: ServiceSettings, own: Sequence[Purge] = ()) -> asyncio.Task[None] | None:
    """The periodic pass for this instance: the shared tables and the service's ``own`` purges (None when
    ``housekeeping_interval_seconds`` is 0)."""
    purges = [*shared_purges(settings), *own]
    return start_periodic(
        f"{settings.service_name}-housekeeping", settings.housekeeping_interval_seconds, lambda: purge(db, purges)
    )
