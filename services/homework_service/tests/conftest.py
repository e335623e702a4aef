"""homework-service in-process against real PostgreSQL and RabbitMQ: a scratch database migrated with the
real migrations, a throwaway vhost, the app's own lifespan (overdue loop off: tests call the scheduler
with the time), httpx talking ASGI to it, and the shared fake user-service on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.homework_service.app import build_app
from services.homework_service.settings import HomeworkServiceSettings
from shared.clock import FakeClock
from shared.testing import infra
from shared.testing.fake_user_service import SERVICE_CLIENTS, FakeUserService
from shared.testing.service import People, Person, asgi_client, db_pool, fake_user_service, running
from shared.testing.tokens import TokenFactory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the app's clock starts here
CLIENT_ID = "lesson-service"  # an account the fake user-service knows; homework-service borrows it here


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    async with infra.migrated_database("homework-service", run_id) as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_url(run_id: str) -> Iterator[str]:
    with infra.scratch_vhost(f"repitbot_test_homework_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
async def users() -> AsyncIterator[FakeUserService]:
    with fake_user_service(await TokenFactory.create()) as state:
        yield state


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture(scope="session")
def settings(database_url: str, rabbit_url: str, users: FakeUserService) -> HomeworkServiceSettings:
    return HomeworkServiceSettings(
        env="test",
        database_url=database_url,
        rabbitmq_url=rabbit_url,
        user_service_url=users.url,
        service_client_id=CLIENT_ID,
        service_client_secret=SERVICE_CLIENTS[CLIENT_ID],
        outbox_poll_seconds=0.5,
        db_pool_size=2,
        db_max_overflow=10,
        overdue_interval_seconds=0,  # the tests call the scheduler themselves, with the time
    )


@pytest.fixture(scope="session")
async def app(settings: HomeworkServiceSettings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    async with running(build_app(settings, clock=clock)) as application:
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://homework-service") as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db_pool(database_url) as pool:
        yield pool


@pytest.fixture
def people(users: FakeUserService) -> People:
    return People(users)


def at(days: float = 0, hours: float = 0) -> str:
    """An ISO time relative to the fake clock's start."""
    return (NOW + timedelta(days=days, hours=hours)).isoformat()


async def assign(client: httpx.AsyncClient, tutor: Person, student: Person, **fields: Any) -> dict[str, Any]:
    body = {"student_id": student.id, "title": "Exercises 1-10", "due_at": at(days=2), **fields}
    response = await client.post("/api/v1/homework", json=body, headers=tutor.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def submit(client: httpx.AsyncClient, student: Person, homework_id: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/homework/{homework_id}/submissions", json=body or {"text": "done"}, headers=student.headers
    )


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "correlation_id"}
    if code is not None:
        assert error["code"] == code, error
    return error


async def outbox_payloads(db: asyncpg.Pool, event_type: str, **payload_fields: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT envelope->'payload' AS payload FROM outbox_events"
        " WHERE event_type = $1 AND envelope->'payload' @> $2::jsonb ORDER BY created_at",
        event_type,
        json.dumps(payload_fields),
    )
    return [json.loads(row["payload"]) for row in rows]
