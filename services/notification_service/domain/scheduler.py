"""The service's scheduler: every pass that answers "what is due at ``now``", run together by one background
loop (``shared.scheduling``) every ``REMINDER_INTERVAL_SECONDS`` in every instance. Each pass is safe to run
concurrently (rows claimed ``FOR UPDATE SKIP LOCKED``, digests under a unique key)."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import FastAPI

from services.notification_service.domain.delivery import emit_deferred
from services.notification_service.domain.digests import emit_digests
from services.notification_service.domain.homework_due import emit_homework_due
from services.notification_service.domain.reminders import emit_due
from shared.db import Database
from shared.scheduling import start_periodic, stop_periodic

log = logging.getLogger(__name__)


async def run_due(database: Database, now: datetime, *, batch_size: int = 100) -> dict[str, int]:
    """Every pass once at ``now``; how many each handled."""
    counts = {
        "reminders": len(await emit_due(database, now, batch_size=batch_size)),
        "homework_due": len(await emit_homework_due(database, now, batch_size=batch_size)),
        "deferred": len(await emit_deferred(database, now, batch_size=batch_size)),
        "digests": len(await emit_digests(database, now)),
    }
    if any(counts.values()):
        log.info("notifications due", extra=counts)
    return counts


async def start_scheduler(app: FastAPI) -> None:
    settings = app.state.settings

    async def tick() -> None:
        await run_due(app.state.db, app.state.clock.now(), batch_size=settings.reminder_batch_size)

    app.state.scheduler_task = start_periodic("notification-scheduler", settings.reminder_interval_seconds, tick)


async def stop_scheduler(app: FastAPI) -> None:
    await stop_periodic(getattr(app.state, "scheduler_task", None))
