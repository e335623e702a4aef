"""Fixtures for the tests of shared/auth, shared/http and shared/idempotency.

Load with ``pytest_plugins = ["tests.auth_fixtures"]``.

Everything here talks real HTTP over loopback: a fake user-service (JWKS, client
credentials, /internal/links; shared/testing/fake_user_service.py, which services'
in-process tests use too) served by uvicorn in a thread, and a TCP proxy that counts
connections (and can drop them) in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.config import ServiceSettings
from shared.db import Database
from shared.errors import install_error_handlers
from shared.middleware import RequestContextMiddleware
from shared.testing.fake_user_service import (
    SERVICE_CLIENTS,
    WAIT_SECONDS,
    FakeUserService,
    LocalServer,
    fake_user_service_app,
)
from shared.testing.tokens import TokenFactory


class CountingProxy:
    """A TCP proxy on loopback that counts the connections it accepts; it can drop them
    (accept and close at once) to play an upstream whose connections fail."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.drop_connections = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> CountingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.wait_for(self._server.wait_closed(), WAIT_SECONDS)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.drop_connections:
            client_writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((client_writer, upstream_writer))
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        finally:
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def tokens() -> TokenFactory:
    return await TokenFactory.create()


@pytest.fixture(scope="session")
def _fake_user_service_server(tokens: TokenFactory) -> Iterator[FakeUserService]:
    state = FakeUserService(tokens)
    state.reset()
    server = LocalServer(fake_user_service_app(state)).start()
    state.url = server.url
    yield state
    server.stop()


@pytest.fixture
def fake_user_service(_fake_user_service_server: FakeUserService) -> FakeUserService:
    """The fake user-service, with no links, no hits and the factory's key in its JWKS."""
    _fake_user_service_server.reset()
    return _fake_user_service_server


def service_settings(user_service_url: str, **overrides: Any) -> ServiceSettings:
    options: dict[str, Any] = {
        "env": "test",
        "service_name": "lesson-service",
        "user_service_url": user_service_url,
        "service_client_id": "lesson-service",
        "service_client_secret": SERVICE_CLIENTS["lesson-service"],
    }
    options.update(overrides)
    return ServiceSettings(**options)


@pytest.fixture
async def user_service_proxy(fake_user_service: FakeUserService) -> AsyncIterator[CountingProxy]:
    """A connection-counting proxy in front of the fake user-service."""
    counting = await CountingProxy(int(fake_user_service.url.rsplit(":", 1)[1])).start()
    yield counting
    await counting.stop()


@pytest.fixture(scope="session")
async def shared_database(shared_db_url: str) -> AsyncIterator[Database]:
    database = Database(shared_db_url, service="auth-tests", pool_size=5, max_overflow=20)
    yield database
    await database.dispose()


def make_test_app(**state: Any) -> FastAPI:
    """A tiny app as create_app would shape it (error shape, request context), state set by hand."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="auth-tests", max_body_bytes=1_048_576)
    for name, value in state.items():
        setattr(app.state, name, value)
    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")
