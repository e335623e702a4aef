"""What the in-process tests of every domain service share: the app served through its own lifespan
to an httpx client over ASGI, the fake user-service on loopback, a small asyncpg pool for direct SQL,
and fresh people with tokens the fake user-service signs and links it answers for.

    with fake_user_service(await TokenFactory.create()) as users: ...
    async with running(app): ...                                  # the app's lifespan
    async with asgi_client(app, "http://lesson-service") as client: ...
    async with db_pool(database_url) as db: ...
    People(users).student_of(tutor)

The settings, the clock and the calls of one service stay in its own conftest.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import asyncpg
import httpx
from fastapi import FastAPI

from shared.db import Database
from shared.testing.fake_user_service import FakeUserService, LocalServer, fake_user_service_app
from shared.testing.tokens import TokenFactory


@contextmanager
def fake_user_service(tokens: TokenFactory) -> Iterator[FakeUserService]:
    """The fake user-service (JWKS, client credentials, /internal/links) served on loopback; its
    ``url`` is set while the block runs."""
    state = FakeUserService(tokens)
    state.reset()
    server = LocalServer(fake_user_service_app(state)).start()
    state.url = server.url
    try:
        yield state
    finally:
        server.stop()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its own lifespan run: started on entry, shut down on exit."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def asgi_client(app: FastAPI, base_url: str, request_timeout: float = 30) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking ASGI to an app already running."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=request_timeout) as http:
        yield http


@asynccontextmanager
async def serve_in_process(
    app: FastAPI, base_url: str, request_timeout: float = 30
) -> AsyncIterator[httpx.AsyncClient]:
    """``running`` and ``asgi_client`` together, for a test that needs only the client."""
    async with running(app), asgi_client(app, base_url, request_timeout) as http:
        yield http


@asynccontextmanager
async def one_connection_database(database_url: str, service: str) -> AsyncIterator[Database]:
    """A ``Database`` of one connection, for a test that runs transactions itself (and sees its own pool)."""
    database = Database(database_url, service=service, pool_size=1, max_overflow=0)
    try:
        yield database
    finally:
        await database.dispose()


@asynccontextmanager
async def db_pool(database_url: str, max_size: int = 2) -> AsyncIterator[asyncpg.Pool]:
    """Direct SQL for what the API does not show, with few connections (the suite shares one PostgreSQL)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass(frozen=True)
class Person:
    id: str
    role: str
    headers: dict[str, str]


class People:
    """Fresh users per test (tests isolate by new tutors, never by truncating)."""

    def __init__(self, users: FakeUserService) -> None:
        self.users = users

    def make(self, role: str) -> Person:
        user_id = str(uuid.uuid4())
        return Person(user_id, role, self.users.tokens.auth_header(user_id, role))

    def tutor(self) -> Person:
        return self.make("tutor")

    def student_of(self, tutor: Person) -> Person:
        student = self.make("student")
        self.users.link(tutor.id, student.id, "tutor")
        return student

    def parent_of(self, student: Person) -> Person:
        parent = self.make("parent")
        self.users.link(parent.id, student.id, "parent")
        return parent

    def admin(self) -> Person:
        return self.make("admin")
