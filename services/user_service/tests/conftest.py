"""user-service in-process against real PostgreSQL and RabbitMQ: a scratch database migrated with the
real migrations, a throwaway vhost, the app's own lifespan, and httpx talking ASGI to it."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.user_service.app import build_app
from services.user_service.settings import UserServiceSettings
from shared.auth.keys import new_private_key_pem
from shared.testing import infra
from shared.testing.service import asgi_client, db_pool, running

PASSWORD = "correct horse battery staple"
BOT_SECRET = "bot-secret-for-the-tests"
LESSON_SERVICE_SECRET = "lesson-secret-for-the-tests"
BOT_USERNAME = "RepitTestBot"


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    async with infra.migrated_database("user-service", run_id) as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_url(run_id: str) -> Iterator[str]:
    with infra.scratch_vhost(f"repitbot_test_user_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
async def signing_key_pem() -> str:
    return (await asyncio.to_thread(new_private_key_pem)).decode()


@pytest.fixture(scope="session")
def settings(database_url: str, rabbit_url: str, signing_key_pem: str) -> UserServiceSettings:
    return UserServiceSettings(
        env="test",
        database_url=database_url,
        rabbitmq_url=rabbit_url,
        jwt_private_key=signing_key_pem,
        service_accounts=f"telegram-bot:{BOT_SECRET},lesson-service:{LESSON_SERVICE_SECRET}",
        bot_username=BOT_USERNAME,
        outbox_poll_seconds=0.5,
    )


@pytest.fixture(scope="session")
async def app(settings: UserServiceSettings) -> AsyncIterator[FastAPI]:
    async with running(build_app(settings)) as application:
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://user-service", request_timeout=10) as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Direct SQL for what the API does not show: row counts, the outbox, stored hashes."""
    async with db_pool(database_url) as pool:
        yield pool


# --- helpers --------------------------------------------------------------------------


def unique_email(who: str = "user") -> str:
    return f"{who}-{uuid.uuid4().hex[:12]}@example.com"


def unique_telegram_id() -> int:
    return 10**9 + secrets.randbelow(10**12)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape (DESIGN.md §3) with the expected status and, optionally, code."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "correlation_id"}
    assert error["correlation_id"]
    if code is not None:
        assert error["code"] == code, error
    return error


@dataclass
class Account:
    id: str
    role: str
    access_token: str
    refresh_token: str
    email: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


class Api:
    """The calls most tests start with."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def register(self, *, invite_code: str | None = None, **fields: Any) -> Account:
        body = {"email": unique_email(), "password": PASSWORD, "full_name": "Test User", **fields}
        if invite_code is not None:
            body["invite_code"] = invite_code
        response = await self.client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        user = data["user"]
        return Account(user["id"], user["role"], data["access_token"], data["refresh_token"], user["email"])

    async def tutor(self) -> Account:
        return await self.register(full_name="Anna Petrovna")

    async def invite(self, tutor: Account, role: str = "student", student_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"role": role}
        if student_id is not None:
            body["student_id"] = student_id
        response = await self.client.post("/api/v1/users/invites", json=body, headers=tutor.headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def student_of(self, tutor: Account) -> Account:
        invite = await self.invite(tutor)
        return await self.register(invite_code=invite["code"], full_name="Petya Ivanov")

    async def parent_of(self, tutor: Account, student: Account) -> Account:
        invite = await self.invite(tutor, "parent", student.id)
        return await self.register(invite_code=invite["code"], full_name="Maria Ivanova")

    async def service_token(self, client_id: str, client_secret: str) -> str:
        response = await self.client.post(
            "/api/v1/auth/token",
            json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def bot_headers(self) -> dict[str, str]:
        return bearer(await self.service_token("telegram-bot", BOT_SECRET))

    async def lesson_service_headers(self) -> dict[str, str]:
        return bearer(await self.service_token("lesson-service", LESSON_SERVICE_SECRET))


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


async def outbox_payloads(db: asyncpg.Pool, event_type: str, **payload_fields: str) -> list[dict[str, Any]]:
    """Payloads of the outbox events of this type whose payload has these field values."""
    rows = await db.fetch(
        "SELECT envelope->'payload' AS payload FROM outbox_events WHERE event_type = $1 AND envelope->'payload' @> $2::jsonb",
        event_type,
        json.dumps(payload_fields),
    )
    return [json.loads(row["payload"]) for row in rows]  # asyncpg returns jsonb as text
