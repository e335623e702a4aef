"""analytics-service in-process against real PostgreSQL and RabbitMQ: scratch databases migrated
with the real migrations, a throwaway vhost, the app's own lifespan (consumer running), httpx over
ASGI and the fake user-service for tokens and links (shared/testing/service.py).

Events are built from the catalogue by ``scenario.py`` and published on the vhost's exchange, as
their producers would: these tests need no other service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.analytics_service.app import build_app
from services.analytics_service.settings import AnalyticsServiceSettings
from shared.events.envelope import Envelope
from shared.testing import infra
from shared.testing.events import eventually, publish
from shared.testing.fake_user_service import SERVICE_CLIENTS, FakeUserService
from shared.testing.service import People, asgi_client, db_pool, fake_user_service, running
from shared.testing.tokens import TokenFactory

CLIENT_ID = "lesson-service"  # an account the fake user-service knows; analytics-service borrows it here


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    async with infra.migrated_database("analytics-service", run_id) as url:
        yield url


@pytest.fixture
async def spare_databases(run_id: str) -> AsyncIterator[tuple[str, str]]:
    """Two more empty databases, for a test that compares two deliveries of the same events."""
    async with (
        infra.migrated_database("analytics-service", run_id, "a") as first,
        infra.migrated_database("analytics-service", run_id, "b") as second,
    ):
        yield first, second


@pytest.fixture(scope="session")
def rabbit_url(run_id: str) -> Iterator[str]:
    with infra.scratch_vhost(f"repitbot_test_analytics_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
async def tokens() -> TokenFactory:
    return await TokenFactory.create()


@pytest.fixture(scope="session")
def users(tokens: TokenFactory) -> Iterator[FakeUserService]:
    with fake_user_service(tokens) as state:
        yield state


def make_settings(database_url: str, rabbit_url: str, users: FakeUserService) -> AnalyticsServiceSettings:
    return AnalyticsServiceSettings(
        env="test",
        database_url=database_url,
        rabbitmq_url=rabbit_url,
        user_service_url=users.url,
        service_client_id=CLIENT_ID,
        service_client_secret=SERVICE_CLIENTS[CLIENT_ID],
        outbox_poll_seconds=0.5,
        db_pool_size=2,
        db_max_overflow=5,
    )


@pytest.fixture(scope="session")
def settings(database_url: str, rabbit_url: str, users: FakeUserService) -> AnalyticsServiceSettings:
    return make_settings(database_url, rabbit_url, users)


@pytest.fixture(scope="session")
async def app(settings: AnalyticsServiceSettings) -> AsyncIterator[FastAPI]:
    application = build_app(settings)
    async with running(application):
        await eventually(lambda: application.state.bus.is_connected, what="analytics-service consuming")
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://analytics-service") as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db_pool(database_url) as pool:
        yield pool


@pytest.fixture
def people(users: FakeUserService) -> People:
    return People(users)


async def handled(db: asyncpg.Pool, events: list[Envelope]) -> None:
    """Wait until the consumer has recorded these events in its inbox."""
    ids = list({e.event_id for e in events})

    async def all_in() -> bool:
        found = await db.fetchval("SELECT count(*) FROM inbox_events WHERE event_id = ANY($1::uuid[])", ids)
        return bool(found == len(ids))

    await eventually(all_in, what=f"{len(ids)} event(s) handled")


async def publish_and_wait(rabbit_url: str, db: asyncpg.Pool, events: list[Envelope]) -> None:
    await publish(rabbit_url, *events)
    await handled(db, events)


READ_MODEL_QUERIES = {
    "users": "SELECT * FROM users ORDER BY user_id",
    "lessons": "SELECT * FROM lessons ORDER BY lesson_id",
    "money": "SELECT * FROM money ORDER BY entry_id",
    "balances": "SELECT * FROM balances ORDER BY tutor_id, student_id",
    "homework": "SELECT * FROM homework ORDER BY homework_id",
    "game": "SELECT * FROM game ORDER BY event_id",
}


async def read_models(db: asyncpg.Pool) -> dict[str, list[dict[str, object]]]:
    """Every read model row, in a stable order, to compare two ways of building them."""
    return {name: [dict(r) for r in await db.fetch(sql)] for name, sql in READ_MODEL_QUERIES.items()}
