"""The overdue scheduler: "what is due at ``now``", one ``homework.overdue`` per assignment.

Safe with any number of instances and restarts: each pass locks the rows it takes with
``FOR UPDATE SKIP LOCKED`` and marks them (``overdue_notified_at``) in the same transaction as
their outbox rows, so a second instance skips what the first holds and never sees it again once
committed; a crash before the commit leaves the rows to the next pass.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import select

from services.homework_service.events import homework_overdue
from services.homework_service.models import Homework
from shared.db import Database
from shared.events.outbox import add_event
from shared.scheduling import start_periodic, stop_periodic

log = logging.getLogger(__name__)


async def emit_overdue(database: Database, now: datetime, *, batch_size: int = 100) -> list[uuid.UUID]:
    """Mark the assignments overdue at ``now`` (assigned, never submitted, deadline passed) and add one
    ``homework.overdue`` each; returns their ids. Loops over batches until nothing is left."""
    done: list[uuid.UUID] = []
    while True:
        async with database.transaction() as session:
            statement = (
                select(Homework)
                .where(
                    Homework.status == "assigned",
                    Homework.overdue_notified_at.is_(None),
                    Homework.due_at <= now,
                )
                .order_by(Homework.due_at, Homework.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = list(await session.scalars(statement))
            for homework in rows:
                homework.overdue_notified_at = now
                await add_event(session, homework_overdue(homework))
        done.extend(x.id for x in rows)
        if len(rows) < batch_size:
            return done


async def start_scheduler(app: FastAPI) -> None:
    settings = app.state.settings

    async def tick() -> None:
        emitted = await emit_overdue(app.state.db, app.state.clock.now(), batch_size=settings.overdue_batch_size)
        if emitted:
            log.info("homework overdue", extra={"count": len(emitted)})

    app.state.overdue_task = start_periodic("homework-overdue", settings.overdue_interval_seconds, tick)


async def stop_scheduler(app: FastAPI) -> None:
    await stop_periodic(getattr(app.state, "overdue_task", None))
