"""The bot's operator endpoints on ``settings.port``: ``GET /health`` (alive; broker and offline queue in the
body) and ``GET /metrics`` (Prometheus). The bot serves no API, so a tiny aiohttp server is enough."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from telegram.ext import Application

from services.telegram_bot import context as bot_context

log = logging.getLogger(__name__)

MESSAGES = Counter("telegram_bot_messages_total", "Messages the bot sent on its own (not replies)", ["outcome"])
NOTIFICATIONS = Counter("telegram_bot_notifications_total", "notification.requested handled", ["outcome"])
OFFLINE_WRITES = Counter("telegram_bot_offline_writes_total", "Writes queued while the fleet was down", ["outcome"])
QUEUE_LENGTH = Gauge("telegram_bot_offline_queue_length", "Writes waiting in the offline queue")


async def queue_length(app: Application) -> int | None:  # type: ignore[type-arg]
    offline = bot_context.of(app).offline
    return None if offline is None else len(await offline.pending())


def make_app(app: Application) -> web.Application:  # type: ignore[type-arg]
    async def health(_: web.Request) -> web.Response:
        notifier: Any = app.bot_data.get("notification_bus")
        broker = notifier is not None and notifier.bus.is_connected
        body = {"status": "ok", "broker": "healthy" if broker else "unhealthy", "queue_length": await queue_length(app)}
        return web.json_response(body)

    async def metrics(_: web.Request) -> web.Response:
        length = await queue_length(app)
        QUEUE_LENGTH.set(length or 0)
        response = web.Response(body=generate_latest())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    server = web.Application()
    server.router.add_get("/health", health)
    server.router.add_get("/metrics", metrics)
    return server


async def serve(app: Application, host: str, port: int) -> web.AppRunner:  # type: ignore[type-arg]
    runner = web.AppRunner(make_app(app), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("health and metrics listening", extra={"port": port})
    return runner
