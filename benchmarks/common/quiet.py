"""Waiting until the event path is idle: nothing left in any outbox, any queue, or being handled.

A phase that starts while an earlier one's events are still flowing would measure
both; so would one that starts while the seeding's ``lesson.scheduled`` events are
still being consumed. Idle means, twice in a row ``interval`` apart: no outbox row
unpublished in any service's database, no message ready in any service's queue, and
no service's inbox grew in between (a message being handled is not "ready").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aio_pika
import aiormq
import asyncpg

from benchmarks.common.fleet import say
from shared.db import asyncpg_dsn


class NotQuiet(RuntimeError):
    pass


async def event_path_state(database_urls: Mapping[str, str], rabbit_url: str) -> dict[str, tuple[int, int, int]]:
    """Service → (unpublished outbox rows, inbox rows, ready messages in its queue)."""
    state: dict[str, tuple[int, int, int]] = {}
    connection = await aio_pika.connect(rabbit_url, timeout=10)
    try:
        for service, url in database_urls.items():
            db = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
            try:
                pending = await db.fetchval("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
                inbox = await db.fetchval("SELECT count(*) FROM inbox_events")
            finally:
                await db.close()
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(service, passive=True)
                ready = int(queue.declaration_result.message_count or 0)
            except aiormq.exceptions.ChannelNotFoundEntity:
                ready = 0  # the service consumes nothing
            finally:
                if not channel.is_closed:
                    await channel.close()
            state[service] = (int(pending), int(inbox), ready)
    finally:
        await connection.close()
    return state


async def wait_until_quiet(
    database_urls: Mapping[str, str],
    rabbit_url: str,
    *,
    limit_seconds: float = 600,
    interval: float = 1.0,
) -> float:
    """Return (seconds waited) once the event path is idle; NotQuiet after ``limit_seconds``."""
    started = time.monotonic()
    previous: dict[str, tuple[int, int, int]] | None = None
    reported = started
    while True:
        state = await event_path_state(database_urls, rabbit_url)
        idle = all(pending == 0 and ready == 0 for pending, _, ready in state.values())
        if idle and previous == state:
            return time.monotonic() - started
        waited = time.monotonic() - started
        if waited > limit_seconds:
            raise NotQuiet(f"the event path is still busy after {limit_seconds:.0f}s: {_describe(state)}")
        if time.monotonic() - reported > 15:
            say(f"waiting for the event path to go quiet: {_describe(state)}")
            reported = time.monotonic()
        previous = state
        await asyncio.sleep(interval)


def _describe(state: Mapping[str, tuple[int, int, int]]) -> str:
    return ", ".join(
        f"{service} outbox {pending} / queue {ready} / inbox {inbox}"
        for service, (pending, inbox, ready) in state.items()
    )
