"""payment-service in-process against real PostgreSQL and RabbitMQ: a scratch database migrated
with the real migrations, a throwaway vhost, the app's own lifespan (consumer and relay running),
httpx talking ASGI to it, and the fake user-service of shared/testing for tokens and links.

Lesson events are built from the catalogue and published on the vhost's exchange, as
lesson-service would: these tests never need lesson-service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.payment_service.app import build_app
from services.payment_service.settings import PaymentServiceSettings
from shared.events.catalogue import EventPayload, LessonCompleted, LessonScheduled
from shared.events.envelope import Envelope
from shared.testing import infra
from shared.testing.events import eventually, publish
from shared.testing.fake_user_service import SERVICE_CLIENTS, FakeUserService
from shared.testing.service import Person, asgi_client, db_pool, fake_user_service, running
from shared.testing.tokens import TokenFactory

CLIENT_ID = "lesson-service"  # an account the fake user-service knows; payment-service borrows it here


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    async with infra.migrated_database("payment-service", run_id) as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_url(run_id: str) -> Iterator[str]:
    with infra.scratch_vhost(f"repitbot_test_payment_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
async def tokens() -> TokenFactory:
    return await TokenFactory.create()


@pytest.fixture(scope="session")
def users(tokens: TokenFactory) -> Iterator[FakeUserService]:
    with fake_user_service(tokens) as state:
        yield state


@pytest.fixture(scope="session")
def settings(database_url: str, rabbit_url: str, users: FakeUserService) -> PaymentServiceSettings:
    return PaymentServiceSettings(
        env="test",
        database_url=database_url,
        rabbitmq_url=rabbit_url,
        user_service_url=users.url,
        service_client_id=CLIENT_ID,
        service_client_secret=SERVICE_CLIENTS[CLIENT_ID],
        outbox_poll_seconds=0.5,
        # 2 kept idle for the session, up to 25 more for the concurrency tests: the whole suite stays
        # well under PostgreSQL's max_connections
        db_pool_size=2,
        db_max_overflow=25,
    )


@pytest.fixture(scope="session")
async def app(settings: PaymentServiceSettings) -> AsyncIterator[FastAPI]:
    async with running(build_app(settings)) as application:
        await consuming(application)
        yield application


async def consuming(application: FastAPI) -> None:
    """Wait until the app's queue is declared and bound: an event published before would be lost."""
    await eventually(lambda: application.state.bus.is_connected, what="payment-service consuming")


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://payment-service") as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Direct SQL for what the API does not show: the rows, the outbox, the accounts."""
    async with db_pool(database_url, max_size=4) as pool:
        yield pool


# --- helpers --------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "correlation_id"}
    if code is not None:
        assert error["code"] == code, error
    return error


@dataclass(frozen=True)
class Family:
    tutor: Person
    student: Person
    parent: Person


class Api:
    """People (tokens from the fake user-service's key, links it answers for) and common calls."""

    def __init__(self, client: httpx.AsyncClient, tokens: TokenFactory, users: FakeUserService) -> None:
        self.client = client
        self.tokens = tokens
        self.users = users

    def person(self, role: str) -> Person:
        user_id = str(uuid.uuid4())
        return Person(user_id, role, self.tokens.auth_header(user_id, role))

    def family(self) -> Family:
        tutor, student, parent = self.person("tutor"), self.person("student"), self.person("parent")
        self.users.link(tutor.id, student.id, "tutor")
        self.users.link(parent.id, student.id, "parent")
        return Family(tutor, student, parent)

    async def top_up(self, tutor: Person, student_id: str, amount: int = 1000, **fields: Any) -> httpx.Response:
        body = {"student_id": student_id, "amount": amount, "currency": "RUB", "method": "cash", **fields}
        headers = {**tutor.headers, "Idempotency-Key": str(uuid.uuid4())}
        return await self.client.post("/api/v1/payments/top-ups", json=body, headers=headers)

    async def balance(self, who: Person, student_id: str, **params: str) -> httpx.Response:
        return await self.client.get(f"/api/v1/payments/balances/{student_id}", headers=who.headers, params=params)

    async def set_price(self, tutor: Person, amount: int, student_id: str | None = None) -> None:
        path = f"students/{student_id}" if student_id else "default"
        response = await self.client.put(
            f"/api/v1/payments/prices/{path}", json={"amount": amount, "currency": "RUB"}, headers=tutor.headers
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def api(client: httpx.AsyncClient, tokens: TokenFactory, users: FakeUserService) -> Api:
    return Api(client, tokens, users)


def lesson_fields(family: Family, *, starts_at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    starts = starts_at or datetime.now(UTC) + timedelta(days=1)
    return {
        "lesson_id": uuid.uuid4(),
        "tutor_id": uuid.UUID(family.tutor.id),
        "student_id": uuid.UUID(family.student.id),
        "starts_at": starts,
        "ends_at": starts + timedelta(minutes=60),
        "subject": "maths",
        **fields,
    }


def envelope(payload: EventPayload, *, occurred_at: datetime | None = None) -> Envelope:
    return Envelope.wrap(payload, producer="lesson-service", correlation_id=str(uuid.uuid4()), occurred_at=occurred_at)


def completed(family: Family, **fields: Any) -> LessonCompleted:
    return LessonCompleted(**lesson_fields(family, **fields))


def scheduled(family: Family, **fields: Any) -> LessonScheduled:
    return LessonScheduled(**lesson_fields(family, **fields))


async def handled(db: asyncpg.Pool, *events: Envelope) -> None:
    """Wait until the service's consumer has recorded these events in its inbox."""
    ids = [e.event_id for e in events]

    async def all_in() -> bool:
        found = await db.fetchval("SELECT count(*) FROM inbox_events WHERE event_id = ANY($1::uuid[])", ids)
        return found == len(set(ids))

    await eventually(all_in, what=f"{len(ids)} event(s) handled")


async def publish_and_wait(rabbit_url: str, db: asyncpg.Pool, *events: Envelope) -> None:
    await publish(rabbit_url, *events)
    await handled(db, *events)


async def ledger_matches_accounts(db: asyncpg.Pool) -> None:
    """The balance cannot drift: every account equals the sum of its rows, and each row's
    balance_after is the running sum in order."""
    drift = await db.fetch(
        """
        SELECT a.tutor_id, a.student_id, a.balance, coalesce(sum(e.amount), 0) AS rebuilt
        FROM accounts a LEFT JOIN ledger_entries e USING (tutor_id, student_id)
        GROUP BY a.tutor_id, a.student_id, a.balance
        HAVING a.balance <> coalesce(sum(e.amount), 0)
        """
    )
    assert not drift, drift
    broken_chain = await db.fetch(
        """
        SELECT id FROM (
            SELECT id, balance_after, amount,
                   lag(balance_after, 1, 0::bigint) OVER (PARTITION BY tutor_id, student_id ORDER BY seq) AS before
            FROM ledger_entries
        ) chained WHERE balance_after <> before + amount
        """
    )
    assert not broken_chain, broken_chain
