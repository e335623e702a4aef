"""Tokens at the gateway: every bad one stops there, good ones pass untouched, keys are cached."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.tests.conftest import (
    RunningGateway,
    Upstream,
    assert_error,
    bearer,
    gateway_settings,
    running_gateway,
    serving_upstream,
)
from shared.clock import FakeClock
from shared.logging import JsonFormatter
from shared.testing.tcp_proxy import TcpProxy
from shared.testing.tokens import TokenFactory

ATTACKS = [
    "alg_none_token",
    "hs256_with_public_key_token",
    "wrong_key_token",
    "expired_token",
    "wrong_audience_token",
    "missing_audience_token",
    "wrong_issuer_token",
    "wrong_type_token",
    "tampered_token",
]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_a_bad_token_is_refused_and_never_reaches_the_service(
    gateway: RunningGateway, upstream: Upstream, tokens: TokenFactory, attack: str
) -> None:
    token = getattr(tokens, attack)(uuid.uuid4(), "tutor")
    async with gateway.client() as client:
        response = await client.get("/api/v1/users/me", headers=bearer(token))
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert upstream.state.requests_to("/api/v1/") == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
async def test_a_request_without_a_bearer_token_is_refused(
    gateway: RunningGateway, upstream: Upstream, headers: dict[str, str]
) -> None:
    async with gateway.client() as client:
        assert_error(await client.get("/api/v1/users/me", headers=headers), 401, "unauthorized")
        assert_error(await client.post("/api/v1/materials/upload", content=b"x", headers=headers), 401)
    assert upstream.state.requests_to("/api/v1/") == []


async def test_public_routes_need_no_token(gateway: RunningGateway, upstream: Upstream, tokens: TokenFactory) -> None:
    async with gateway.client() as client:
        for path in ("register", "login", "refresh", "logout", "token", "telegram"):
            response = await client.post(f"/api/v1/auth/{path}", json={})
            assert response.status_code == 200, (path, response.text)
        # a bad token on a public route is the service's business (user-service guards /auth/telegram)
        response = await client.post(
            "/api/v1/auth/telegram", json={}, headers=bearer(tokens.expired_token("x", "service"))
        )
        assert response.status_code == 200
    assert len(upstream.state.requests_to("/api/v1/auth/")) == 7


async def test_keys_are_cached_and_keep_working_while_user_service_is_down(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    with serving_upstream("keys", jwks=tokens.jwks) as keys, TcpProxy("127.0.0.1", keys.port) as keys_link:
        settings = gateway_settings(
            {"user-service": [upstream.url]}, jwks_url=keys_link.rewrite_url(keys.url) + JWKS_PATH
        )
        async with running_gateway(settings, clock=clock) as gateway, gateway.client() as client:
            assert (
                await client.get("/api/v1/users/me", headers=tokens.auth_header(uuid.uuid4(), "tutor"))
            ).status_code == 200
            keys_link.cut()
            clock.advance(700)  # the cached keys are due for a refresh, which fails: they keep serving
            for role in ("tutor", "student", "parent"):  # new tokens, same key
                response = await client.get("/api/v1/users/me", headers=tokens.auth_header(uuid.uuid4(), role))
                assert response.status_code == 200
            keys_link.restore()
            # a key user-service has just rotated in is fetched on first sight of its kid
            rotated = await tokens.rotated()
            keys.state.jwks = {"keys": [tokens.public_jwk, rotated.public_jwk]}
            clock.advance(10)  # past the JWKS client's minimum interval between fetches
            response = await client.get("/api/v1/users/me", headers=rotated.auth_header(uuid.uuid4(), "tutor"))
            assert response.status_code == 200, response.text
    assert keys_link.connections_seen == 3  # the first fetch, one refused refresh while cut, the rotated key


async def test_the_access_log_names_the_caller_and_the_upstream(gateway: RunningGateway, tokens: TokenFactory) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter("api-gateway"))  # formatted as it is emitted, inside the request
    access_log = logging.getLogger("access")
    access_log.addHandler(handler)
    user_id = str(uuid.uuid4())
    try:
        async with gateway.client() as client:
            response = await client.get("/api/v1/users/me", headers=tokens.auth_header(user_id, "tutor"))
    finally:
        access_log.removeHandler(handler)
    [line] = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert line["correlation_id"] == response.headers["x-correlation-id"]
    assert line["user_id"] == user_id
    assert line["upstream"] == gateway.gateway.registry.pool("user-service").instances[0].address
    assert line["status"] == 200 and line["route"] == "/api/v1/users" and line["duration_ms"] >= 0
