"""Runs the bot: ``python -m services.telegram_bot.main``.

Long polling by default; with ``WEBHOOK_URL`` set (a public HTTPS URL) Telegram POSTs updates to PTB's
webhook server on ``WEBHOOK_LISTEN:WEBHOOK_PORT``, checked with ``WEBHOOK_SECRET`` (the secret-token
header). ``/health`` and ``/metrics`` are served on ``PORT`` either way. SIGTERM/SIGINT stop it gracefully:
updates drained, the notification consumer cancelled, the replay loop stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from urllib.parse import urlsplit

from telegram import Update

from services.telegram_bot import health
from services.telegram_bot.app import build_application
from services.telegram_bot.settings import BotSettings
from shared.collector import after_start
from shared.logging import configure_logging

log = logging.getLogger(__name__)

NO_TOKEN = (
    "TELEGRAM_BOT_TOKEN is not set, so the bot cannot start.\n"
    "Get a token: open Telegram, talk to @BotFather, send /newbot, choose a name and a username ending in "
    "'bot'; BotFather answers with a token like 123456789:AA...\n"
    "Then set TELEGRAM_BOT_TOKEN=<token> in .env (or TELEGRAM_BOT_TOKEN_FILE=<path> to a file holding it) "
    "and start the bot again. The rest of RepitBot runs without it."
)


async def run(settings: BotSettings, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT, or until ``stop`` is set (tests and embedders stop it that way);
    ``ready`` is set once updates are being received (the webhook server listens, or polling runs)."""
    app = build_application(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows, not off the main thread
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)

    server = None
    await app.initialize()
    try:
        if app.post_init is not None:  # run_polling/run_webhook would call it; we start the parts ourselves
            await app.post_init(app)
        server = await health.serve(app, settings.host, settings.port)
        await app.start()
        assert app.updater is not None
        if settings.webhook_url:
            await app.updater.start_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                url_path=urlsplit(settings.webhook_url).path.lstrip("/"),  # the path Telegram POSTs to
                webhook_url=settings.webhook_url,
                secret_token=settings.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
            log.info("receiving updates by webhook", extra={"url": settings.webhook_url})
        else:
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES)
            log.info("receiving updates by long polling")
        after_start(settings.service_name)  # as every service once started: collections timed, heap frozen
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        # PTB leaves the webhook registered at Telegram (updates wait there for the next start)
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        if server is not None:
            await server.cleanup()
        for sig in signals:  # the loop may outlive us (an embedding program, a test)
            loop.remove_signal_handler(sig)


def main() -> int:
    settings = BotSettings()
    configure_logging(settings.service_name, settings.log_level)
    if not settings.telegram_bot_token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    if not settings.service_client_secret:
        print(
            "SERVICE_CLIENT_SECRET is not set: the bot signs users in with its client secret (the one user-service"
            " lists for telegram-bot in SERVICE_ACCOUNTS) and seals their sessions with a key derived from it.",
            file=sys.stderr,
        )
        return 2
    if settings.webhook_url and not settings.webhook_secret:
        print(
            "WEBHOOK_URL is set without WEBHOOK_SECRET: set a random secret so forged updates are refused.",
            file=sys.stderr,
        )
        return 2
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
