"""A fake user-service for tests of a service in-process: JWKS, client credentials and
``/internal/links`` served over real HTTP on loopback (uvicorn in a thread).

    state = FakeUserService(await TokenFactory.create()); state.reset()
    server = LocalServer(fake_user_service_app(state)).start(); state.url = server.url
    state.link(tutor_id, student_id, "tutor")  # what /internal/links answers

A service built with ``create_app`` and ``USER_SERVICE_URL=state.url`` (its client id one of
``SERVICE_CLIENTS``) verifies ``state.tokens`` tokens and resolves access through it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from jose import jwt

from shared.auth.deps import ServiceCaller
from shared.auth.jwt import StaticKeySource, TokenVerifier
from shared.errors import NotFound, Unauthorized, install_error_handlers
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
