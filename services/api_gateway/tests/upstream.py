"""A small upstream for the gateway's tests: it echoes what reached it, streams big bodies,
and serves a JWKS and an OpenAPI document.

In a thread (``tests.auth_fixtures.LocalServer``), or as a process of its own when a
test kills it::

    UPSTREAM_NAME=b uvicorn --factory services.api_gateway.tests.upstream:app_from_environment --port N
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHUNK = 64 * 1024

OPENAPI_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "test upstream", "version": "1"},
    "paths": {
        "/api/v1/users/me": {
            "get": {
                "summary": "Me",
                "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}}}
                },
            }
        },
        "/api/v1/auth/login": {"post": {"summary": "Log in", "responses": {"200": {"description": "tokens"}}}},
        "/internal/links/{a}/{b}": {"get": {"summary": "never public", "responses": {"200": {"description": "x"}}}},
        "/health": {"get": {"summary": "alive", "responses": {"200": {"description": "x"}}}},
    },
    "components": {"schemas": {"Profile": {"type": "object", "properties": {"id": {"type": "string"}}}}},
}


@dataclass
class UpstreamState:
    name: str
    jwks: dict[str, Any] | None = None
    ready_status: int = 200
    seen: list[dict[str, Any]] = field(default_factory=list)  # every /api and /internal request

    def requests_to(self, path_prefix: str) -> list[dict[str, Any]]:
        return [seen for seen in self.seen if seen["path"].startswith(path_prefix)]


def upstream_app(state: UpstreamState) -> Starlette:
    def record(request: Request, **extra: Any) -> dict[str, Any]:
        seen = {
            "upstream": state.name,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": [[name.decode(), value.decode()] for name, value in request.scope["headers"]],
            **extra,
        }
        state.seen.append(seen)
        return seen

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready" if state.ready_status == 200 else "not_ready"}, state.ready_status)

    async def jwks(request: Request) -> Response:
        return JSONResponse(state.jwks or {"keys": []})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI_DOCUMENT)

    async def echo(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        seen = record(request, body_size=size)
        headers = {"X-Upstream": state.name, "Keep-Alive": "timeout=5", "X-Upstream-Hop": "drop me"}
        if "set-hop" in request.query_params:
            headers["Connection"] = "X-Upstream-Hop"
        return JSONResponse(seen, status_code=int(request.query_params.get("status", 200)), headers=headers)

    async def upload(request: Request) -> Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        record(request, body_size=size)
        return JSONResponse({"size": size, "sha256": digest.hexdigest()})

    async def download(request: Request) -> Response:
        size = int(request.query_params["size"])
        record(request)

        async def chunks() -> AsyncIterator[bytes]:
            block = bytes(CHUNK)
            for start in range(0, size, CHUNK):
                yield block[: min(CHUNK, size - start)]

        return StreamingResponse(chunks(), media_type="application/octet-stream", headers={"Content-Length": str(size)})

    async def broken(request: Request) -> Response:
        """Promises ``size`` bytes, sends half, then the process's connection breaks."""
        size = int(request.query_params["size"])
        record(request)

        async def half_then_fail() -> AsyncIterator[bytes]:
            yield bytes(size // 2)
            raise ConnectionResetError("the upstream broke off")

        return StreamingResponse(half_then_fail(), headers={"Content-Length": str(size)})

    async def slow(request: Request) -> Response:
        record(request)
        await asyncio.sleep(float(request.query_params.get("seconds", "5")))
        return JSONResponse({"upstream": state.name, "slept": True})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/ready", ready),
            Route("/health", ready),
            Route("/.well-known/jwks.json", jwks),
            Route("/openapi.json", openapi),
            Route("/api/v1/materials/upload", upload, methods=["POST"]),
            Route("/api/v1/materials/download", download),
            Route("/api/v1/materials/broken", broken),
            Route("/api/v1/users/slow", slow),
            Route("/api/v1/{rest:path}", echo, methods=methods),
            Route("/internal/{rest:path}", echo, methods=methods),
        ]
    )


def app_from_environment() -> Starlette:
    return upstream_app(UpstreamState(os.environ.get("UPSTREAM_NAME", "upstream")))
