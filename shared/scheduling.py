"""The background loop of a "what is due at ``now``" scheduler, once for every service that has one.

Every instance runs the loop; the pass it calls must itself be safe to run concurrently and again (claim due
rows ``FOR UPDATE SKIP LOCKED`` and mark them in the transaction that adds their events, or insert under a
unique key), so no leader is elected. Tests call the pass with the time they choose; the loop only adds
"now, every ``interval`` seconds". A failing pass (the database is down) is logged and tried next time.

    app.state.overdue_task = start_periodic("homework-overdue", settings.overdue_interval_seconds, tick)
    ...
    await stop_periodic(app.state.overdue_task)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Tick = Callable[[], Awaitable[object]]


def start_periodic(name: str, interval: float, tick: Tick) -> asyncio.Task[None] | None:
    """Run ``tick`` now and every ``interval`` seconds in a task named ``name``; None when ``interval`` is 0
    (the loop is off: tests drive the pass themselves)."""
    if interval <= 0:
        return None
    return asyncio.create_task(_run(name, interval, tick), name=name)


async def stop_periodic(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run(name: str, interval: float, tick: Tick) -> None:
    while True:
        try:
            await tick()
        except Exception:  # a database outage: try again next time
            log.exception("scheduled pass failed", extra={"task": name})
        await asyncio.sleep(interval)
