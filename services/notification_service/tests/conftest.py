"""notification-service in-process against real PostgreSQL and RabbitMQ: a scratch database migrated with
the real migrations, a throwaway vhost, the app's own lifespan (scheduler loop off: tests call the passes
with the time they choose) on a FakeClock at ``NOW`` (what quiet hours are judged by), and the shared
fake user-service and helpers (shared/testing/service.py). Events are built from the catalogue and
published on the vhost's exchange as their producers would."""

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
from shared.clock import FakeClock
from shared.events.catalogue import EventPayload, LessonScheduled, StudentLinked, UserRegistered
from shared.events.envelope import Envelope
from shared.testing import infra
from shared.testing.events import eventually, publish
from shared.testing.fake_user_service import SERVICE_CLIENTS, FakeUserService
from shared.testing.service import People, Person, asgi_client, db_pool, fake_user_service, running
from shared.testing.tokens import TokenFactory

# the app's clock: a Saturday, after the events' real occurred_at (12:00 in Moscow, 18:00 in Tokyo)
NOW = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)
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
async def users() -> AsyncIterator[FakeUserService]:
    """The fake user-service: signs the tests' tokens and answers /internal/links from ``users.links``."""
    with fake_user_service(await TokenFactory.create()) as state:
        yield state


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock(NOW)


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
async def app(settings: NotificationServiceSettings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    async with running(build_app(settings, clock=clock)) as application:
        await eventually(lambda: application.state.bus.is_connected, what="notification-service consuming")
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://notification-service") as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db_pool(database_url, max_size=4) as pool:
        yield pool


@dataclass(frozen=True)
class Family:
    tutor: Person
    student: Person
    parent: Person


class Events:
    """Publishes catalogue events as their producers would, waiting until the service handled them."""

    def __init__(self, rabbit_url: str, db: asyncpg.Pool, users: FakeUserService) -> None:
        self.rabbit_url, self.db, self.people = rabbit_url, db, People(users)

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
        return self.people.make(role)

    async def register(self, person: Person, **fields: Any) -> None:
        values = {"full_name": f"{person.role} {person.id[:6]}", "timezone": "Europe/Moscow", "language": "ru"}
        await self.send(
            UserRegistered(user_id=uuid.UUID(person.id), role=person.role, **{**values, **fields}),
            producer="user-service",
        )

    async def family(self, *, parent_telegram_id: int | None = 555, with_parent: bool = True) -> Family:
        tutor = self.people.tutor()
        student = self.people.student_of(tutor)
        parent = self.people.parent_of(student)
        await self.register(tutor)
        await self.register(student, telegram_id=444, tutor_id=tutor.id)
        await self.register(
            parent, telegram_id=parent_telegram_id, tutor_id=tutor.id, timezone="Asia/Tokyo", language="en"
        )
        links = [StudentLinked(student_id=student.id, principal_id=tutor.id, relation="tutor", tutor_id=tutor.id)]
        if with_parent:
            links.append(
                StudentLinked(student_id=student.id, principal_id=parent.id, relation="parent", tutor_id=tutor.id)
            )
        await self.send(*links, producer="user-service")
        return Family(tutor, student, parent)


@pytest.fixture
def events(app: FastAPI, rabbit_url: str, db: asyncpg.Pool, users: FakeUserService) -> Events:
    """Needs the app: the events are only handled while it consumes."""
    return Events(rabbit_url, db, users)


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


async def log_of(db: asyncpg.Pool, user_id: str, **where: Any) -> list[asyncpg.Record]:
    """The user's delivery log rows (optionally those matching ``where``), oldest first."""
    conditions = "".join(f" AND {name} = ${i}" for i, name in enumerate(where, start=2))
    return await db.fetch(
        f"SELECT * FROM deliveries WHERE user_id = $1{conditions} ORDER BY created_at, id",
        uuid.UUID(user_id),
        *where.values(),
    )


async def prefer(client: httpx.AsyncClient, who: Person, **body: Any) -> dict[str, Any]:
    response = await client.put("/api/v1/notifications/preferences", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()
