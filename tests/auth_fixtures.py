"""Fixtures for the tests of shared/auth, shared/http and shared/idempotency.

Load with ``pytest_plugins = ["tests.auth_fixtures"]``.

Everything here talks real HTTP over loopback: a fake user-service (JWKS, client
credentials, /internal/links) served by uvicorn in a thread, and a TCP proxy
that counts connections (and can drop them) in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from jose import jwt

from shared.auth.deps import ServiceCaller
from shared.auth.jwt import StaticKeySource, TokenVerifier
from shared.config import ServiceSettings
from shared.db import Database
from shared.errors import NotFound, Unauthorized, install_error_handlers
from shared.middleware import RequestContextMiddleware
from shared.testing.tokens import TokenFactory

WAIT_SECONDS = 10.0  # upper bound for a server to start or stop


# --- serving an app on loopback ---------------------------------------------------------


class LocalServer:
    """An ASGI app served by uvicorn on a free loopback port, in a thread of its own."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="local-server", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        self._thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the local server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(WAIT_SECONDS)


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


# --- a fake user-service -------------------------------------------------------------------

SERVICE_CLIENTS = {"lesson-service": "dev-lesson-secret", "telegram-bot": "dev-bot-secret"}


@dataclass
class FakeUserService:
    """What the fake user-service knows and what it was asked; tests change it between calls."""

    tokens: TokenFactory
    url: str = ""
    jwks_keys: list[dict[str, Any]] = field(default_factory=list)
    links: set[tuple[str, str, str]] = field(default_factory=set)  # (principal_id, student_id, relation)
    revoked_jtis: set[str] = field(default_factory=set)
    status_answers: list[int] = field(default_factory=list)  # /status answers these in turn, then 200
    hits: Counter[str] = field(default_factory=Counter)
    issued_tokens: list[str] = field(default_factory=list)
    seen_correlation_ids: list[str | None] = field(default_factory=list)

    def reset(self) -> None:
        self.jwks_keys = [self.tokens.public_jwk]
        self.links.clear()
        self.revoked_jtis.clear()
        self.status_answers.clear()
        self.hits.clear()
        self.issued_tokens.clear()
        self.seen_correlation_ids.clear()

    def link(self, principal_id: Any, student_id: Any, relation: str) -> None:
        self.links.add((str(principal_id), str(student_id), relation))

    def revoke_issued_tokens(self) -> None:
        self.revoked_jtis.update(jwt.get_unverified_claims(token)["jti"] for token in self.issued_tokens)


def fake_user_service_app(state: FakeUserService) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.verifier = TokenVerifier(
        StaticKeySource([state.tokens.public_jwk]), issuer=state.tokens.issuer, audience=state.tokens.audience
    )

    def unrevoked(caller: Any) -> None:
        if caller.claims.jti in state.revoked_jtis:
            raise Unauthorized("Token revoked")

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        state.hits["jwks"] += 1
        return {"keys": state.jwks_keys}

    @app.post("/api/v1/auth/token")
    async def token(body: dict[str, Any]) -> dict[str, Any]:
        state.hits["token"] += 1
        client_id = body.get("client_id")
        if body.get("grant_type") != "client_credentials" or SERVICE_CLIENTS.get(client_id) != body.get(
            "client_secret"
        ):
            raise Unauthorized("Unknown client")
        access_token = state.tokens.make_token(client_id, "service")
        state.issued_tokens.append(access_token)
        return {"access_token": access_token, "token_type": "bearer", "expires_in": state.tokens.ttl_seconds}

    @app.get("/internal/links/{principal_id}/{student_id}")
    async def link(principal_id: str, student_id: str, caller: ServiceCaller) -> dict[str, Any]:
        state.hits["links"] += 1
        unrevoked(caller)
        for relation in ("tutor", "parent"):
            if (principal_id, student_id, relation) in state.links:
                return {"principal_id": principal_id, "student_id": student_id, "relation": relation, "active": True}
        raise NotFound("No such link")

    @app.get("/internal/whoami")
    async def whoami(request: Request, caller: ServiceCaller) -> dict[str, Any]:
        state.hits["whoami"] += 1
        unrevoked(caller)
        state.seen_correlation_ids.append(request.headers.get("x-correlation-id"))
        return {"id": caller.id, "role": caller.role}

    @app.post("/slow")
    async def slow() -> dict[str, bool]:
        state.hits["slow"] += 1
        await asyncio.sleep(0.5)  # longer than the caller's timeout in the test
        return {"done": True}

    @app.api_route("/status", methods=["GET", "POST"])
    async def status(request: Request) -> Response:
        state.hits[f"status {request.method}"] += 1
        code = state.status_answers.pop(0) if state.status_answers else 200
        return Response(status_code=code, headers={"Connection": "close"})

    return app


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
