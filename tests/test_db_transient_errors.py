"""A database that says "not now" (too many connections, a statement timeout) is a 503 the client may
retry, not a 500; a real error stays a 500 that tells the client nothing (real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from shared.db import Database
from shared.errors import install_error_handlers, is_transient_database_error
from shared.testing.infra import PG_ADMIN_DSN


@pytest.fixture
async def crowded_role(shared_db_url: str) -> AsyncIterator[str]:
    """A login role allowed no connection at all: every connect is 53300 too_many_connections."""
    role = f"repitbot_test_crowded_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        yield shared_db_url.replace("postgres@", f"{role}@", 1)
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


def _app(crowded: Database, database: Database) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/crowded")
    async def crowded_read() -> dict[str, int]:
        async with crowded.sessionmaker() as session:
            return {"one": await session.scalar(text("SELECT 1"))}

    @app.get("/slow")
    async def slow_read() -> dict[str, int]:
        async with database.sessionmaker() as session:
            await session.execute(text("SET LOCAL statement_timeout = '10ms'"))
            await session.execute(text("SELECT pg_sleep(1)"))
            return {"one": 1}

    @app.get("/broken")
    async def broken_read() -> dict[str, int]:
        async with database.sessionmaker() as session:
            return {"one": await session.scalar(text("SELECT 1 / 0"))}

    return app


async def test_too_many_connections_and_a_statement_timeout_are_503_and_a_real_error_500(
    shared_db_url: str, crowded_role: str
) -> None:
    crowded = Database(crowded_role, service="transient-test", pool_size=1, max_overflow=0)
    database = Database(shared_db_url, service="transient-test", pool_size=1, max_overflow=0)
    try:
        transport = httpx.ASGITransport(app=_app(crowded, database), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path in ("/crowded", "/slow"):
                response = await client.get(path)
                assert response.status_code == 503, (path, response.text)
                assert response.json()["error"]["code"] == "service_unavailable"
                assert int(response.headers["retry-after"]) > 0
            broken = await client.get("/broken")
    finally:
        await crowded.dispose()
        await database.dispose()
    assert broken.status_code == 500
    assert broken.json()["error"] == {
        "code": "internal_error",
        "message": "Internal error",
        "details": None,
        "correlation_id": broken.json()["error"]["correlation_id"],
    }
    assert "division" not in broken.text  # no SQL or driver text reaches the client


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("53300", True),  # too_many_connections
        ("08006", True),  # connection_failure
        ("57P03", True),  # cannot_connect_now
        ("57014", True),  # query_canceled (statement timeout)
        ("40001", True),  # serialization_failure
        ("40P01", True),  # deadlock_detected
        ("22012", False),  # division_by_zero: a bug, not a busy database
        ("23505", False),  # unique_violation: the caller's conflict, mapped elsewhere
        (None, False),
    ],
)
def test_which_sqlstates_are_worth_a_retry(sqlstate: str | None, transient: bool) -> None:
    assert is_transient_database_error(sqlstate) is transient
