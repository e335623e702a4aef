"""``create_app``: the one place a service is assembled. A service's main.py is a few lines:

    settings = UserServiceSettings()
    app = create_app(settings, routers=[auth.router, users.router], subscriptions=HANDLERS)

and gets settings, logs, errors, health, metrics, auth, the database and events from here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from shared import housekeeping
from shared.auth.access import ACCESS_LINK_HANDLERS, AccessResolver
from shared.auth.jwt import JwksClient, TokenVerifier
from shared.clock import SYSTEM_CLOCK, Clock
from shared.collector import after_start
from shared.config import ServiceSettings
from shared.db import Database
from shared.errors import install_error_handlers
from shared.events import EventHandler
from shared.events.bus import EventBus, RabbitMQBus
from shared.events.consumer import EventConsumer
from shared.events.relay import OutboxRelay
from shared.events.relay_thread import ThreadedOutboxRelay
from shared.fleet import ServiceSpec, by_name
from shared.health import router as health_router
from shared.http import ServiceClient
from shared.logging import configure_logging
from shared.metrics import metrics_endpoint
from shared.middleware import RequestContextMiddleware
from shared.migrations import head_revisions
from shared.scheduling import stop_periodic

log = logging.getLogger(__name__)

Hook = Callable[[FastAPI], Awaitable[None]]


def create_app(
    settings: ServiceSettings,
    *,
    routers: Sequence[APIRouter] = (),
    subscriptions: Mapping[str, EventHandler] | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    clock: Clock = SYSTEM_CLOCK,
    bus: EventBus | None = None,
    title: str | None = None,
    spec: ServiceSpec | None = None,
    purges: Sequence[housekeeping.Purge] = (),
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Build a service: settings, logs, errors, health, metrics, auth, DB and events, then its routers.

    Every service consumes ``student.linked``/``student.unlinked`` to keep its
    access links; ``subscriptions`` adds the service's own handlers. ``spec``
    defaults to the fleet entry named by ``settings.service_name``; a service
    without a database (the gateway) gets no database, outbox or consumer.
    ``purges``: the service's own tables' rows deleted past their age, with the
    shared tables' (``shared.housekeeping``).
    """
    configure_logging(settings.service_name, settings.log_level)
    spec = spec or by_name(settings.service_name)
    handlers: dict[str, EventHandler] = {**ACCESS_LINK_HANDLERS, **(subscriptions or {})}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        state.http = ServiceClient(settings, clock=clock)
        state.verifier = TokenVerifier(
            JwksClient(settings.resolved_jwks_url, clock=clock),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        if spec.has_database:
            await _start_data_and_events(state)
        for hook in on_startup:
            await hook(app)
        after_start(settings.service_name)
        log.info("started", extra={"port": settings.port, "env": settings.env})
        try:
            yield
        finally:
            # uvicorn has stopped accepting and drained requests before this runs (SIGTERM)
            for hook in reversed(on_shutdown):
                await hook(app)
            if spec.has_database:
                await stop_periodic(state.housekeeping)
                await state.consumer.stop()
                await state.relay.stop()  # one last pass: publish what is already committed
                await state.bus.close()
                await state.db.dispose()
            await state.http.aclose()
            log.info("stopped")

    async def _start_data_and_events(state: Any) -> None:
        """The database, and the events that need it: outbox relay, inbox consumer, access links."""
        state.db = Database(
            settings.database_url or "",
            service=settings.service_name,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        state.schema_heads = head_revisions(spec)

        def rabbitmq_bus(role: str) -> RabbitMQBus:
            return RabbitMQBus(
                settings.rabbitmq_url,
                service=settings.service_name,
                role=role,
                exchange=settings.events_exchange,
                delivery_limit=settings.event_delivery_limit,
                publish_timeout=settings.publish_timeout_seconds,
                prefetch=2 * settings.event_batch_size,
            )

        state.bus = bus or rabbitmq_bus("consumer")
        state.access = AccessResolver(state.http)
        if bus is None:  # the relay publishes through a connection of its own, from a thread of its own
            state.relay = ThreadedOutboxRelay(
                state.db, lambda: rabbitmq_bus("outbox-relay"), poll_seconds=settings.outbox_poll_seconds
            )
        else:  # a bus handed in (a test's) lives on this loop
            state.relay = OutboxRelay(state.db, state.bus, poll_seconds=settings.outbox_poll_seconds)
        state.consumer = EventConsumer(
            state.db,
            state.bus,
            service=settings.service_name,
            handlers=handlers,
            batch_size=settings.event_batch_size,
            linger_seconds=settings.event_linger_seconds,
        )
        await state.bus.start()  # returns at once; (re)connects in the background
        await state.consumer.start()
        await state.relay.start()
        state.housekeeping = housekeeping.start(state.db, settings, purges)

    app = FastAPI(
        title=title or settings.service_name,
        version=settings.version,
        lifespan=lifespan,
        **fastapi_kwargs,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.extra_checks = {}
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware, service=settings.service_name, max_body_bytes=settings.max_request_body_bytes
    )
    app.include_router(health_router)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    return app
