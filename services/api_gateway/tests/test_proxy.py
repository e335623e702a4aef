"""What the proxy passes on and what it keeps back: routes, headers, bodies, limits, CORS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.tests.conftest import (
    RunningGateway,
    Upstream,
    assert_error,
    bearer,
    gateway_settings,
    running_gateway,
)
from shared.clock import FakeClock
from shared.testing.tokens import TokenFactory


def header(seen: dict, name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key == name.lower()]


async def test_a_request_reaches_its_service_as_the_client_sent_it(
    gateway: RunningGateway, upstream: Upstream, tokens: TokenFactory
) -> None:
    token = tokens.make_token(uuid.uuid4(), "tutor")
    async with gateway.client() as client:
        response = await client.put(
            "/api/v1/users/a%20b/c?x=1&y=%C3%A9&x=2",
            content=b'{"hello": "world"}',
            headers={
                **bearer(token),
                "Content-Type": "application/json",
                "X-Custom": "kept",
                "Connection": "keep-alive, X-Client-Hop",
                "X-Client-Hop": "dropped",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "X-Forwarded-For": "6.6.6.6",
                "X-Correlation-ID": "cid-from-the-client",
            },
        )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["raw_path"] == "/api/v1/users/a%20b/c"
    assert seen["query"] == "x=1&y=%C3%A9&x=2"
    assert seen["body_size"] == len(b'{"hello": "world"}')
    assert header(seen, "authorization") == [f"Bearer {token}"]  # unchanged
    assert header(seen, "x-custom") == ["kept"]
    assert header(seen, "content-type") == ["application/json"]
    for hop_by_hop in ("connection", "keep-alive", "te", "x-client-hop", "transfer-encoding"):
        assert not header(seen, hop_by_hop), hop_by_hop
    assert header(seen, "x-forwarded-for") == ["127.0.0.1"]  # the gateway's view, never the client's claim
    assert header(seen, "x-forwarded-proto") == ["http"]
    assert header(seen, "x-forwarded-host") == [gateway.url.removeprefix("http://")]
    assert header(seen, "host") == [upstream.url.removeprefix("http://")]
    assert header(seen, "x-correlation-id") == ["cid-from-the-client"]
    # the client's own, not the gateway's HTTP client's
    assert header(seen, "user-agent") == [response.request.headers["user-agent"]]
    assert header(seen, "accept-encoding") == [response.request.headers["accept-encoding"]]
    assert response.headers["x-correlation-id"] == "cid-from-the-client"
    assert response.headers["x-upstream"] == "u1"
    assert "keep-alive" not in response.headers
    assert response.headers["x-ratelimit-limit"] == "100"


async def test_headers_the_upstream_declares_hop_by_hop_do_not_reach_the_client(
    gateway: RunningGateway, tokens: TokenFactory
) -> None:
    async with gateway.client() as client:
        response = await client.get("/api/v1/users/x?set-hop=1", headers=tokens.auth_header(uuid.uuid4(), "tutor"))
    assert response.status_code == 200
    assert "x-upstream-hop" not in response.headers
    assert "connection" not in response.headers or response.headers["connection"] == "keep-alive"
    assert len(response.headers.get_list("x-correlation-id")) == 1  # the gateway's, not a second from upstream
    assert len(response.headers.get_list("date")) == 1


async def test_behind_a_trusted_proxy_the_forwarded_client_is_passed_on(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    settings = gateway_settings({"user-service": [upstream.url]}, jwks_url=upstream.url + JWKS_PATH)
    headers = {
        **tokens.auth_header(uuid.uuid4(), "tutor"),
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
    }
    async with running_gateway(settings, clock=clock, behind_trusted_proxy=True) as gateway, gateway.client() as client:
        seen = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert header(seen, "x-forwarded-for") == ["203.0.113.7"]
    assert header(seen, "x-forwarded-proto") == ["https"]


async def test_internal_paths_and_unknown_routes_are_never_proxied(
    gateway: RunningGateway, upstream: Upstream, tokens: TokenFactory
) -> None:
    headers = tokens.auth_header("lesson-service", "service")
    async with gateway.client() as client:
        for path in (
            "/internal/links/a/b",
            "/api/v1/internal/links/a/b",
            "/api/v2/users/me",
            "/api/v1/users/../../internal/x",
        ):
            assert_error(await client.get(path, headers=headers), 404, "not_found")
    assert upstream.state.seen == []


async def test_the_jwks_is_public_and_comes_from_user_service(gateway: RunningGateway, tokens: TokenFactory) -> None:
    async with gateway.client() as client:
        response = await client.get(JWKS_PATH)
    assert response.status_code == 200
    assert response.json() == tokens.jwks


async def test_a_service_that_is_not_deployed_answers_503(gateway: RunningGateway, tokens: TokenFactory) -> None:
    async with gateway.client() as client:
        response = await client.get("/api/v1/lessons", headers=tokens.auth_header(uuid.uuid4(), "tutor"))
    assert_error(response, 503, "service_unavailable")
    assert int(response.headers["retry-after"]) >= 1


async def _chunks(size: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, size, chunk):
        yield bytes(min(chunk, size - start))


async def test_each_route_has_its_own_body_limit(upstream: Upstream, clock: FakeClock, tokens: TokenFactory) -> None:
    settings = gateway_settings(
        {"user-service": [upstream.url], "material-service": [upstream.url]},
        jwks_url=upstream.url + JWKS_PATH,
        max_request_body_bytes=1000,
        route_policies={"materials": {"max_body_bytes": 200_000}},
    )
    headers = tokens.auth_header(uuid.uuid4(), "tutor")
    async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
        assert (await client.post("/api/v1/users/x", content=bytes(1000))).status_code == 200
        error = assert_error(await client.post("/api/v1/users/x", content=bytes(1001)), 413, "payload_too_large")
        assert error["details"] == {"limit": 1000}
        assert (await client.post("/api/v1/materials/upload", content=bytes(200_000))).status_code == 200
        assert_error(await client.post("/api/v1/materials/upload", content=bytes(200_001)), 413)
        # without a declared length (chunked) the limit holds while the body streams
        assert_error(await client.post("/api/v1/materials/upload", content=_chunks(300_000)), 413)
        assert (await client.post("/api/v1/materials/upload", content=_chunks(150_000))).json()["size"] == 150_000
    sizes = [seen["body_size"] for seen in upstream.state.requests_to("/api/v1/")]
    assert sizes == [1000, 200_000, 150_000]  # a refused body with a declared length never left the gateway


async def test_cors_preflight_is_answered_for_configured_origins(upstream: Upstream, clock: FakeClock) -> None:
    settings = gateway_settings(
        {"user-service": [upstream.url]}, jwks_url=upstream.url + JWKS_PATH, cors_origins="https://app.example"
    )
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with running_gateway(settings, clock=clock) as gateway, gateway.client() as client:
        allowed = await client.options("/api/v1/users/me", headers={"Origin": "https://app.example", **preflight})
        refused = await client.options("/api/v1/users/me", headers={"Origin": "https://evil.example", **preflight})
        login = await client.post("/api/v1/auth/login", json={}, headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"].lower() == "authorization,content-type"
    assert "access-control-allow-origin" not in refused.headers
    assert login.headers["access-control-allow-origin"] == "https://app.example"
    assert "X-RateLimit-Remaining" in login.headers["access-control-expose-headers"]
    assert upstream.state.requests_to("/api/v1/users") == []  # preflights never travel upstream


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "PATCH"])
async def test_every_method_passes_through(gateway: RunningGateway, tokens: TokenFactory, method: str) -> None:
    async with gateway.client(headers=tokens.auth_header(uuid.uuid4(), "tutor")) as client:
        response = await client.request(method, "/api/v1/users/anything")
    assert response.status_code == 200
    if method != "HEAD":
        assert response.json()["method"] == method


async def test_a_silent_upstream_answers_504(upstream: Upstream, tokens: TokenFactory, clock: FakeClock) -> None:
    settings = gateway_settings(
        {"user-service": [upstream.url]}, jwks_url=upstream.url + JWKS_PATH, upstream_timeout_seconds=0.2
    )
    async with running_gateway(settings, clock=clock) as slow_gateway, slow_gateway.client() as client:
        response = await client.get("/api/v1/users/slow?seconds=1", headers=tokens.auth_header(uuid.uuid4(), "tutor"))
    assert_error(response, 504, "upstream_timeout")
    assert len(upstream.state.requests_to("/api/v1/users/slow")) == 1  # a timeout is never retried


async def test_an_answer_the_upstream_breaks_off_reaches_the_client_cut_never_complete_looking(
    gateway: RunningGateway, tokens: TokenFactory
) -> None:
    async with gateway.client(headers=tokens.auth_header(uuid.uuid4(), "tutor")) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/api/v1/materials/broken?size=2000000")
        assert (await client.get("/api/v1/materials/after")).status_code == 200  # the gateway carries on
