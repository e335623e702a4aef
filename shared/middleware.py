"""One ASGI middleware for what every request needs: correlation ID, body limit, metrics, access log."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import context
from shared.errors import error_body
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("access")
_VALID_CID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = {"/health", "/ready", "/metrics"}


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-correlation-id", b"").decode("latin-1")
        cid = incoming if _VALID_CID.match(incoming) else context.new_correlation_id()
        cid_token = context.correlation_id.set(cid)
        user_token = context.user_id.set(None)
        started = time.perf_counter()
        status = 500
        response_started = False
        limit = self.max_body_bytes

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if body_too_large and not response_started:
                # the app caught our signal while parsing and answered something else
                response_started = True
                status = 413
                await self._too_large(send, limit, cid)
                return
            if body_too_large:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (b"x-correlation-id", cid.encode())]
            await send(message)

        received = 0
        body_too_large = False

        async def receive_wrapper() -> Message:
            nonlocal received, body_too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    body_too_large = True
                    raise _BodyTooLarge
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                status = 413
                await self._too_large(send, limit, cid)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge:
            if not response_started:
                status = 413
                await self._too_large(send, limit, cid)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(elapsed)
            if scope["path"] not in _QUIET_PATHS:
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            context.user_id.reset(user_token)
            context.correlation_id.reset(cid_token)

    @staticmethod
    async def _too_large(send: Any, limit: int, cid: str) -> None:
        body = orjson.dumps(error_body("payload_too_large", f"The request body exceeds {limit} bytes"))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-correlation-id", cid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
