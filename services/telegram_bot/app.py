"""Builds the bot: python-telegram-bot's Application with RepitBot's services and every screen.

Screens live in ``handlers/`` (one module per area, each with a ``register(app)``); ``flows`` goes
last, so commands and specific buttons are matched before the catch-all. Errors never reach the user
as silence or a traceback: the fleet being down becomes "temporarily unavailable", a refusal becomes
the reason, anything else "something went wrong" (and a log line with the traceback).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from redis.asyncio import Redis
from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from services.telegram_bot import context as bot_context
from services.telegram_bot import fallback, notifications
from services.telegram_bot.api import ApiError, MicroserviceClient, NotSignedIn, SessionStore, Unavailable, session_seal
from services.telegram_bot.context import Bot
from services.telegram_bot.handlers.common import answer, caller, refusal
from services.telegram_bot.settings import BotSettings
from services.telegram_bot.state import ConversationStore
from shared.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

# every area of the bot, in the order its handlers are tried; ``flows`` (the catch-all) is last
SCREENS = ("start", "tutor_lessons", "tutor_work", "student", "parent", "messaging", "rsvp", "flows")


def build_application(settings: BotSettings, *, clock: Clock = SYSTEM_CLOCK, redis: Redis | None = None) -> Application:  # type: ignore[type-arg]
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set: get one from @BotFather")
    if not settings.service_client_secret:
        raise ValueError("SERVICE_CLIENT_SECRET is not set: the bot signs users in with it and seals their sessions")
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        # Telegram's flood limits: queue and pace our calls; a 429 is waited out (retry_after) and retried
        .rate_limiter(AIORateLimiter(overall_max_rate=settings.send_rate_per_second, max_retries=3))
        .post_init(_started)
        .post_shutdown(_stopped)
    )
    app = builder.build()
    redis = redis or Redis.from_url(settings.redis_url, decode_responses=True)
    sessions = SessionStore(redis, session_seal(settings.service_client_secret))
    app.bot_data[bot_context.KEY] = Bot(
        settings=settings,
        api=MicroserviceClient(settings, sessions, clock=clock),
        sessions=sessions,
        conversations=ConversationStore(redis, settings.conversation_ttl_seconds),
        clock=clock,
    )
    app.bot_data["redis"] = redis
    for screen in SCREENS:
        importlib.import_module(f"services.telegram_bot.handlers.{screen}").register(app)
    app.add_error_handler(_on_error)
    return app


async def _started(app: Application) -> None:  # type: ignore[type-arg]
    bot = bot_context.of(app)
    me = await app.bot.get_me()
    bot.username = me.username or bot.username
    # the offline store and its replay loop, then the notification consumer (RabbitMQ)
    await fallback.start(app)
    await notifications.start(app)


async def _stopped(app: Application) -> None:  # type: ignore[type-arg]
    bot = bot_context.of(app)
    await notifications.stop(app)
    await fallback.stop(app)
    await bot.api.aclose()
    await app.bot_data["redis"].aclose()


async def _on_error(update: object, context: Any) -> None:
    error = context.error
    if isinstance(error, fallback.Queued):  # saved offline; the user was already told
        return
    if not isinstance(update, Update) or update.effective_chat is None or update.effective_user is None:
        log.error("error outside an update", exc_info=error)
        return
    who = await caller(update, context)
    if isinstance(error, Unavailable):
        text = who.t("service_unavailable")
    elif isinstance(error, ApiError):
        text = refusal(who.lang, error)
    elif isinstance(error, NotSignedIn):
        text = who.t("need_start")
    else:
        log.error("handler failed", exc_info=error, extra={"telegram_id": update.effective_user.id})
        text = who.t("error_generic")
    await answer(update, text)
