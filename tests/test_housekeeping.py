"""shared/housekeeping.py against real PostgreSQL: each shared table loses exactly its rows past their
retention (by the database's clock, which wrote them), never an unpublished outbox row, and a service
built by ``create_app`` runs the pass by itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from shared.app import create_app
from shared.config import ServiceSettings
from shared.db import Database, asyncpg_dsn
from shared.events.bus import InMemoryBus
from shared.fleet import ServiceSpec
from shared.housekeeping import purge, shared_purges
from shared.testing import infra
from shared.testing.events import eventually

SETTINGS = ServiceSettings(env="test", service_name="housekeeping-probe")
PURGES = shared_purges(SETTINGS)  # the defaults: outbox 7 days after publishing, inbox 30, keys 7


@pytest.fixture
async def database_url(test_run_id: str) -> AsyncIterator[str]:
    """A database of its own: the counts asserted are of this test's rows alone."""
    name = f"repitbot_test_housekeeping_{test_run_id}_{uuid.uuid4().hex[:8]}"
    url = await infra.create_scratch_database_with_shared_tables(name)
    yield url
    await infra.drop_database(name)


async def _age_rows(url: str) -> dict[str, set[str]]:
    """Rows on both sides of each retention; returns the ids that must survive, per table."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        outbox = {label: uuid.uuid4() for label in ("published_8_days_ago", "published_6_days_ago", "pending_old")}
        await connection.executemany(
            "INSERT INTO outbox_events (id, event_type, envelope, created_at, published_at)"
            " VALUES ($1, 'user.updated', '{}', now() - $2::interval, now() - $3::interval)",
            [
                (outbox["published_8_days_ago"], timedelta(days=9), timedelta(days=8)),
                (outbox["published_6_days_ago"], timedelta(days=9), timedelta(days=6)),
                (outbox["pending_old"], timedelta(days=100), None),  # never published: the relay still owes it
            ],
        )
        inbox = {label: uuid.uuid4() for label in ("received_31_days_ago", "received_29_days_ago")}
        await connection.executemany(
            "INSERT INTO inbox_events (event_id, event_type, received_at) VALUES ($1, 'user.updated', now() - $2::interval)",
            [(inbox["received_31_days_ago"], timedelta(days=31)), (inbox["received_29_days_ago"], timedelta(days=29))],
        )
        await connection.executemany(
            "INSERT INTO idempotency_keys (caller, key, method, path, request_hash, created_at)"
            " VALUES ('tutor', $1, 'POST', '/api/v1/x', 'h', now() - $2::interval)",
            [("stored_8_days_ago", timedelta(days=8)), ("stored_1_day_ago", timedelta(days=1))],
        )
    finally:
        await connection.close()
    return {
        "outbox_events": {str(outbox["published_6_days_ago"]), str(outbox["pending_old"])},
        "inbox_events": {str(inbox["received_29_days_ago"])},
        "idempotency_keys": {"stored_1_day_ago"},
    }


async def _remaining(url: str) -> dict[str, set[str]]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {
            "outbox_events": {str(r[0]) for r in await connection.fetch("SELECT id FROM outbox_events")},
            "inbox_events": {str(r[0]) for r in await connection.fetch("SELECT event_id FROM inbox_events")},
            "idempotency_keys": {r[0] for r in await connection.fetch("SELECT key FROM idempotency_keys")},
        }
    finally:
        await connection.close()


async def test_each_table_loses_exactly_its_rows_past_their_retention(database_url: str) -> None:
    survivors = await _age_rows(database_url)
    db = Database(database_url, service="housekeeping-probe", pool_size=1, max_overflow=0)
    try:
        assert await purge(db, PURGES) == {"outbox_events": 1, "inbox_events": 1, "idempotency_keys": 1}
        assert await _remaining(database_url) == survivors
        # again: nothing more is past its retention
        assert await purge(db, PURGES) == {"outbox_events": 0, "inbox_events": 0, "idempotency_keys": 0}
    finally:
        await db.dispose()


async def test_a_service_runs_the_pass_by_itself(database_url: str) -> None:
    survivors = await _age_rows(database_url)
    settings = SETTINGS.model_copy(update={"database_url": database_url, "housekeeping_interval_seconds": 3600})
    app = create_app(settings, bus=InMemoryBus(), spec=ServiceSpec("housekeeping-probe", "housekeeping_probe", 0))
    async with app.router.lifespan_context(app):

        async def purged() -> bool:
            return await _remaining(database_url) == survivors

        await eventually(purged, what="the pass create_app starts at start-up")
    assert app.state.housekeeping.done()  # stopped with the service
