"""material-service in-process against real PostgreSQL and RabbitMQ: a scratch database migrated
with the real migrations, a throwaway vhost, a blob directory of its own, the app's lifespan,
httpx talking ASGI to it, and the fake user-service of shared/testing for tokens and links."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.material_service.app import build_app
from services.material_service.settings import MaterialServiceSettings
from shared.events.catalogue import StudentLinked
from shared.events.envelope import Envelope
from shared.testing import infra
from shared.testing.events import eventually, publish
from shared.testing.fake_user_service import SERVICE_CLIENTS, FakeUserService
from shared.testing.service import Person, asgi_client, db_pool, fake_user_service, running
from shared.testing.tokens import TokenFactory

CLIENT_ID = "lesson-service"  # an account the fake user-service knows; material-service borrows it here
MAX_FILE_BYTES = 1024 * 1024  # small, so the size limit is cheap to reach

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    async with infra.migrated_database("material-service", run_id) as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_url(run_id: str) -> Iterator[str]:
    with infra.scratch_vhost(f"repitbot_test_material_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
async def tokens() -> TokenFactory:
    return await TokenFactory.create()


@pytest.fixture(scope="session")
def users(tokens: TokenFactory) -> Iterator[FakeUserService]:
    with fake_user_service(tokens) as state:
        yield state


@pytest.fixture(scope="session")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("materials")


@pytest.fixture(scope="session")
def settings(database_url: str, rabbit_url: str, users: FakeUserService, blob_dir: Path) -> MaterialServiceSettings:
    return MaterialServiceSettings(
        env="test",
        database_url=database_url,
        rabbitmq_url=rabbit_url,
        user_service_url=users.url,
        service_client_id=CLIENT_ID,
        service_client_secret=SERVICE_CLIENTS[CLIENT_ID],
        outbox_poll_seconds=0.5,
        db_pool_size=2,
        db_max_overflow=10,
        blob_dir=blob_dir,
        max_file_bytes=MAX_FILE_BYTES,
        max_request_body_bytes=0,  # raised to the file limit plus the form's room
    )


@pytest.fixture(scope="session")
async def app(settings: MaterialServiceSettings) -> AsyncIterator[FastAPI]:
    async with running(build_app(settings)) as application:
        await eventually(lambda: application.state.bus.is_connected, what="material-service consuming")
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "http://material-service") as http:
        yield http


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with db_pool(database_url, max_size=4) as pool:
        yield pool


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
    def __init__(
        self, client: httpx.AsyncClient, tokens: TokenFactory, users: FakeUserService, rabbit_url: str, db: asyncpg.Pool
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.users = users
        self.rabbit_url = rabbit_url
        self.db = db

    def person(self, role: str) -> Person:
        user_id = str(uuid.uuid4())
        return Person(user_id, role, self.tokens.auth_header(user_id, role))

    def family(self) -> Family:
        tutor, student, parent = self.person("tutor"), self.person("student"), self.person("parent")
        self.users.link(tutor.id, student.id, "tutor")
        self.users.link(parent.id, student.id, "parent")
        return Family(tutor, student, parent)

    async def announce(self, tutor: Person, student: Person, parent: Person | None = None) -> None:
        """user-service's student.linked events for these links, handled by material-service:
        what fills its local links, which lists read (a single material also asks user-service)."""
        links = [(tutor, "tutor")] + ([(parent, "parent")] if parent else [])
        envelopes = [
            Envelope.wrap(
                StudentLinked(
                    student_id=uuid.UUID(student.id),
                    principal_id=uuid.UUID(principal.id),
                    relation=relation,
                    tutor_id=uuid.UUID(tutor.id),
                ),
                producer="user-service",
                correlation_id=str(uuid.uuid4()),
            )
            for principal, relation in links
        ]
        await publish(self.rabbit_url, *envelopes)
        ids = [e.event_id for e in envelopes]

        async def handled() -> bool:
            found = await self.db.fetchval("SELECT count(*) FROM inbox_events WHERE event_id = ANY($1::uuid[])", ids)
            return found == len(ids)

        await eventually(handled, what="student.linked handled")

    async def upload(
        self,
        who: Person,
        content: bytes = PDF,
        filename: str = "notes.pdf",
        *,
        title: str = "Notes",
        **fields: Any,
    ) -> httpx.Response:
        data: dict[str, Any] = {"title": title, **fields}
        return await self.client.post(
            "/api/v1/materials",
            data=data,
            files={"file": (filename, content, "application/octet-stream")},
            headers=who.headers,
        )

    async def uploaded(self, who: Person, content: bytes = PDF, **fields: Any) -> dict[str, Any]:
        response = await self.upload(who, content, **fields)
        assert response.status_code == 201, response.text
        return response.json()

    async def share(self, who: Person, material_id: str, **body: Any) -> httpx.Response:
        return await self.client.post(f"/api/v1/materials/{material_id}/share", json=body, headers=who.headers)

    async def download(self, who: Person, material_id: str, **headers: str) -> httpx.Response:
        return await self.client.get(f"/api/v1/materials/{material_id}/download", headers={**who.headers, **headers})


@pytest.fixture
def api(
    client: httpx.AsyncClient, tokens: TokenFactory, users: FakeUserService, rabbit_url: str, db: asyncpg.Pool
) -> Api:
    return Api(client, tokens, users, rabbit_url, db)


def unique_bytes(kind: bytes = PDF) -> bytes:
    """Content nobody else in the session uploads (dedup is global)."""
    return kind + uuid.uuid4().bytes


async def outbox(db: asyncpg.Pool, event_type: str, material_id: str) -> list[dict[str, Any]]:
    """The payloads of this material's events of one type, oldest first."""
    rows = await db.fetch(
        "SELECT envelope FROM outbox_events WHERE event_type = $1 AND envelope->'payload'->>'material_id' = $2"
        " ORDER BY created_at",
        event_type,
        material_id,
    )
    return [json.loads(row["envelope"])["payload"] for row in rows]
