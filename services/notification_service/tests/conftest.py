"""notification-service in-process against real PostgreSQL and RabbitMQ: a scratch database migrated with
the real migrations, a throwaway vhost, the app's own lifespan (reminder loop off: tests call the scheduler
with the time). Events are built from the catalogue and published on the vhost's exchange as their
producers would."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.notification_service.app import build_app
from services.notification_service.settings import NotificationServiceSettings
from shared.events.catalogue import EventPayload, LessonScheduled, StudentLinked, UserRegistered
from shared.events.envelope import Envelope
from shared.testing import infra
from shared.testing.events import eventually, publish
from shared.testing.fake_user_service import SERVICE_CLIENTS, FakeUserService, LocalServer, fake_user_service_app
from shared.testing.tokens import TokenFactory

NOW = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)  # after the events' real occurred_at
ALERT_TOKEN = "alertmanager-test-token"
CLIENT_ID = "lesson-service"  # an account the fake user-service knows; notification-service borrows it here


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    async with infra.migrated_database("notification-service", run_id) as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_url(run_id: str) -> Iterator[str]:
    with infra.scratch_vhost(f"repitbot_test_notification_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
async def tokens() -> TokenFactory:
    return await TokenFactory.create()


@pytest.fixture(scope="session")
def users(tokens: TokenFactory) -> Iterator[FakeUserService]:
    state = FakeUserService(tokens)
    state.reset()
    server = LocalServer(fake_user_service_app(state)).start()
    state.url = server.url
    yield state
    server.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, rabbit_url: str, users: FakeUserService) -> NotificationServiceSettings:
    return NotificationServiceSettings(
        env="test",
        database_url=database_url,
        rabbitmq_url=rabbit_url,
        user_service_url=users.url,
        service_client_id=CLIENT_ID,
        service_client_secret=SERVICE_CLIENTS[CLIENT_ID],
        outbox_poll_seconds=0.5,
        db_pool_size=2,
        db_max_overflow=10,
        reminder_interval_seconds=0,  # the tests call the scheduler themselves, with the time
        alertmanager_token=ALERT_TOKEN,
    )


@pytest.fixture(scope="session")
async def app(settings: NotificationServiceSettings) -> AsyncIterator[FastAPI]:
    application = build_app(settings)
    async with application.router.lifespan_context(application):
        await eventually(lambda: application.state.bus.is_connected, what="notification-service consuming")
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notification-service", timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    role: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Family:
    tutor: Person
    student: Person
    parent: Person


class Events:
    """Publishes catalogue events as their producers would, waiting until the service handled them."""

    def __init__(self, rabbit_url: str, db: asyncpg.Pool, tokens: TokenFactory, users: FakeUserService) -> None:
        self.rabbit_url, self.db, self.tokens, self.users = rabbit_url, db, tokens, users

    async def send(
        self, *payloads: EventPayload, producer: str = "lesson-service", occurred_at: datetime | None = None
    ) -> list[Envelope]:
        envelopes = [
            Envelope.wrap(p, producer=producer, correlation_id=str(uuid.uuid4()), occurred_at=occurred_at)
            for p in payloads
        ]
        await publish(self.rabbit_url, *envelopes)
        await handled(self.db, *envelopes)
        return envelopes

    def person(self, role: str) -> Person:
        user_id = uuid.uuid4()
        return Person(user_id, role, self.tokens.auth_header(str(user_id), role))

    async def register(self, person: Person, **fields: Any) -> None:
        values = {"full_name": f"{person.role} {person.id.hex[:6]}", "timezone": "Europe/Moscow", "language": "ru"}
        await self.send(
            UserRegistered(user_id=person.id, role=person.role, **{**values, **fields}), producer="user-service"
        )

    async def family(self, *, parent_telegram_id: int | None = 555) -> Family:
        tutor, student, parent = self.person("tutor"), self.person("student"), self.person("parent")
        self.users.link(str(tutor.id), str(student.id), "tutor")
        self.users.link(str(parent.id), str(student.id), "parent")
        await self.register(tutor)
        await self.register(student, telegram_id=444, tutor_id=tutor.id)
        await self.register(
            parent, telegram_id=parent_telegram_id, tutor_id=tutor.id, timezone="Asia/Tokyo", language="en"
        )
        await self.send(
            StudentLinked(student_id=student.id, principal_id=tutor.id, relation="tutor", tutor_id=tutor.id),
            StudentLinked(student_id=student.id, principal_id=parent.id, relation="parent", tutor_id=tutor.id),
            producer="user-service",
        )
        return Family(tutor, student, parent)


@pytest.fixture
def events(rabbit_url: str, db: asyncpg.Pool, tokens: TokenFactory, users: FakeUserService) -> Events:
    return Events(rabbit_url, db, tokens, users)


def lesson(family: Family, *, starts_at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "lesson_id": uuid.uuid4(),
        "tutor_id": family.tutor.id,
        "student_id": family.student.id,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=60),
        "subject": "maths",
        "topic": "fractions",
        **fields,
    }


def scheduled(family: Family, *, starts_at: datetime, **fields: Any) -> LessonScheduled:
    return LessonScheduled(**lesson(family, starts_at=starts_at, **fields))


async def handled(db: asyncpg.Pool, *envelopes: Envelope) -> None:
    ids = [e.event_id for e in envelopes]

    async def all_in() -> bool:
        found = await db.fetchval("SELECT count(*) FROM inbox_events WHERE event_id = ANY($1::uuid[])", ids)
        return found == len(set(ids))

    await eventually(all_in, what=f"{len(ids)} event(s) handled")


async def requested(db: asyncpg.Pool, **payload_fields: Any) -> list[dict[str, Any]]:
    """The notification.requested payloads in the outbox containing these fields (params as a dict)."""
    rows = await db.fetch(
        "SELECT envelope->'payload' AS payload FROM outbox_events"
        " WHERE event_type = 'notification.requested' AND envelope->'payload' @> $1::jsonb ORDER BY created_at",
        json.dumps(payload_fields),
    )
    return [json.loads(row["payload"]) for row in rows]
