"""student-service in-process against real PostgreSQL and RabbitMQ: a scratch database migrated with the
real migrations, a throwaway vhost, the app's own lifespan (its consumer included), httpx talking ASGI
to it, and the shared fake user-service on loopback. Events reach it the way they do in production:
published to the vhost's exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.student_service.app import build_app
from services.student_service.settings import StudentServiceSettings
from shared.clock import FakeClock
from shared.db import Database
from shared.events.catalogue import EventPayload
from shared.events.envelope import Envelope
from shared.testing import infra
from shared.testing.events import eventually, publish
from shared.testing.fake_user_service import SERVICE_CLIENTS, FakeUserService
from shared.testing.service import (
    People,
    Person,
    asgi_client,
    db_pool,
    fake_user_service,
    one_connection_database,
    running,
)
from shared.testing.tokens import TokenFactory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLIENT_ID = "lesson-service"


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    async with infra.migrated_database("student-service", run_id) as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_url(run_id: str) -> Iterator[str]:
    with infra.scratch_vhost(f"repitbot_test_student_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
async def users() -> AsyncIterator[FakeUserService]:
    with fake_user_service(await TokenFactory.create()) as state:
        yield state


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture(scope="session")
def settings(database_url: str, rabbit_url: str, users: FakeUserService) -> StudentServiceSettings:
    return StudentServiceSettings(
        env="test",
        database_url=database_url,
        rabbitmq_url=rabbit_url,
        user_service_url=users.url,
        # the fake user-service knows a few clients; which one asks for links does not matter here
        service_client_id=CLIENT_ID,
        service_client_secret=SERVICE_CLIENTS[CLIENT_ID],
        outbox_poll_seconds=0.5,
        db_pool_size=2,
        db_max_overflow=8,
    )


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """student-service's database, for a test that runs handlers itself (one connection)."""
    async with one_connection_database(database_url, "student-service") as db:
        yield db


@pytest.fixture(scope="session")
async def app(settings: StudentServiceSettings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    async with running(build_app(settings, clock=clock)) as application:
        # an event published before the queue is declared and bound would be lost
        await eventually(lambda: application.state.bus.is_connected, what="student-service consuming")
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://student-service") as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db_pool(database_url) as pool:
        yield pool


@pytest.fixture
def people(users: FakeUserService) -> People:
    return People(users)


class Events:
    """Publishes catalogue payloads to the service's vhost and waits for what they do."""

    def __init__(self, rabbit_url: str, db: asyncpg.Pool) -> None:
        self.rabbit_url = rabbit_url
        self.db = db

    def wrap(self, payload: EventPayload, producer: str = "test", occurred_at: datetime | None = None) -> Envelope:
        return Envelope.wrap(payload, producer=producer, correlation_id="student-tests", occurred_at=occurred_at)

    async def send(self, *envelopes: Envelope) -> None:
        await publish(self.rabbit_url, *envelopes)
        ids = [e.event_id for e in envelopes]

        async def handled() -> bool:
            count = await self.db.fetchval("SELECT count(*) FROM inbox_events WHERE event_id = ANY($1::uuid[])", ids)
            return count == len(set(ids))

        await eventually(handled, timeout=15, what="the events handled")


@pytest.fixture
async def events(app: FastAPI, rabbit_url: str, db: asyncpg.Pool) -> Events:
    return Events(rabbit_url, db)


async def profile_of(client: httpx.AsyncClient, student: Person, viewer: Person | None = None) -> dict[str, Any]:
    response = await client.get(f"/api/v1/students/{student.id}/profile", headers=(viewer or student).headers)
    assert response.status_code == 200, response.text
    return response.json()
