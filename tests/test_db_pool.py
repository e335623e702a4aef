"""The pool's liveness check (``shared.db._ping_when_idle``), on real PostgreSQL: a connection the server
dropped while it sat idle in the pool is replaced at checkout, unseen by the caller; a connection used
moments ago is not pinged, so one the server dropped in those moments fails once, and the pool is
renewed for the next caller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import Database, asyncpg_dsn

pytest_plugins = ["tests.events_fixtures"]


async def _backend(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def _drop(db: Database, pid: int) -> None:
    """The server ends the session, as a restart or an idle timeout would."""
    admin = await asyncpg.connect(asyncpg_dsn(db.url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


@pytest.fixture
async def pooled(events_db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    db = Database(events_db_url, service="pool-test", pool_size=1, max_overflow=0, idle_ping_seconds=request.param)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.mark.parametrize("pooled", [0.0], indirect=True)
async def test_a_connection_dropped_while_idle_is_replaced_before_the_caller_sees_it(pooled: Database) -> None:
    first = await _backend(pooled)
    await _drop(pooled, first)

    assert await _backend(pooled) != first  # no error: found dead at checkout, replaced


@pytest.mark.parametrize("pooled", [3600.0], indirect=True)
async def test_a_connection_used_moments_ago_is_not_pinged_and_a_drop_costs_one_failure(pooled: Database) -> None:
    first = await _backend(pooled)
    await _drop(pooled, first)

    with pytest.raises(DBAPIError):  # not pinged: its first statement finds it gone
        await _backend(pooled)
    assert await _backend(pooled) != first  # the pool was renewed for the next caller
