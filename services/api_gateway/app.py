"""Assembly: the proxy (a plain ASGI handler) in front of the gateway's own FastAPI app.

Requests for ``/api/...`` and ``/.well-known/jwks.json`` go straight to the proxy
(``proxy.py``), wrapped only in the shared request-context middleware; FastAPI
— built by the shared ``create_app``, with its error shape, health, readiness and
metrics — serves everything else and runs the lifespan. Keeping FastAPI's routing,
validation and dependency injection off the proxied path is what lets the gateway
keep up with the services behind it (docs/decisions/0008-api-gateway-hot-path.md).
"""

from __future__ import annotations

import logging
import sys

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api_gateway.api import docs, status
from services.api_gateway.discovery import Resolver, system_resolver
from services.api_gateway.gateway import Gateway
from services.api_gateway.proxy import CURRENT_UPSTREAM, ProxyHandler
from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.settings import GatewaySettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.middleware import RequestContextMiddleware

PROXIED_PREFIX = "/api/"  # the proxy answers everything below it: a route, or 404 in the one error shape
# Headers a browser script may read from a cross-origin answer.
CORS_EXPOSED_HEADERS = [
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "X-Correlation-ID",
]
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class GatewayApp:
    """What uvicorn runs. ``gateway`` and ``api`` are there for tests and operators."""

    def __init__(self, gateway: Gateway, api: FastAPI, proxy: ASGIApp, settings: GatewaySettings) -> None:
        self.gateway = gateway
        self.api = api
        self._proxy = proxy
        self._entry: ASGIApp = self._dispatch
        if settings.cors_origins:  # a preflight is answered here and never proxied
            self._entry = CORSMiddleware(
                self._dispatch,
                allow_origins=settings.cors_origins,
                allow_methods=CORS_METHODS,
                allow_headers=["*"],
                expose_headers=CORS_EXPOSED_HEADERS,
                max_age=settings.cors_max_age_seconds,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"].startswith(PROXIED_PREFIX) or scope["path"] == JWKS_PATH):
            await self._proxy(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def build_gateway(
    settings: GatewaySettings, *, clock: Clock = SYSTEM_CLOCK, resolver: Resolver = system_resolver
) -> GatewayApp:
    api = create_app(
        settings,
        routers=[status.router, docs.router],
        on_startup=[_start],
        on_shutdown=[_stop],
        clock=clock,
        title="RepitBot API",
        description="Every RepitBot service behind one gateway. Authorize with an access token from /api/v1/auth/login.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the gateway serves the merged document itself (api/docs.py)
    )
    _answer_before_shared_routes(api, status.health_router)
    gateway = Gateway(settings, clock=clock, resolver=resolver, gateway_document=api.openapi)
    api.state.gateway = gateway
    api.state.extra_checks.update(routing=gateway.routing_ready, rate_limiter=gateway.rate_limiter_ready)
    _name_the_upstream_in_access_logs()
    # the proxy holds every route to its own body limit; the middleware's must never cut in first
    proxy = RequestContextMiddleware(ProxyHandler(gateway), service=settings.service_name, max_body_bytes=sys.maxsize)
    return GatewayApp(gateway, api, proxy, settings)


async def _start(api: FastAPI) -> None:
    gateway: Gateway = api.state.gateway
    await gateway.start()
    api.state.verifier = gateway.verifier  # one verifier (and one key cache) for the whole gateway


async def _stop(api: FastAPI) -> None:
    await api.state.gateway.stop()


def _answer_before_shared_routes(api: FastAPI, router: APIRouter) -> None:
    """create_app mounts the shared liveness ``/health`` first; the gateway's (which also
    summarises upstreams and the rate limiter) must answer that path instead."""
    api.include_router(router)  # appended last...
    api.router.routes.insert(0, api.router.routes.pop())  # ...and moved ahead of every other route


class _UpstreamField(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        upstream = CURRENT_UPSTREAM.get()
        if upstream is not None:
            record.upstream = upstream
        return True


def _name_the_upstream_in_access_logs() -> None:
    access = logging.getLogger("access")  # the request-context middleware's access log
    if not any(isinstance(existing, _UpstreamField) for existing in access.filters):
        access.addFilter(_UpstreamField())
