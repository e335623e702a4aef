"""The real python-telegram-bot, in this process, against the fake Bot API server and the real test
fleet behind the gateway. ``BotRunner`` starts, stops and restarts it (a restart keeps Redis and the
offline file, as a real one does)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from telegram.ext import Application

from services.telegram_bot.app import build_application
from services.telegram_bot.settings import BotSettings
from shared.testing.fake_telegram import FakeTelegram, FakeUser
from shared.testing.fleet import TestFleet


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


class BotRunner:
    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings
        self.app: Application | None = None  # type: ignore[type-arg]

    async def start(self) -> Application:  # type: ignore[type-arg]
        app = build_application(self.settings)
        await app.initialize()
        if app.post_init is not None:  # as run_polling does: the bot's start-up (getMe, offline store, consumer)
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1, drop_pending_updates=False)
        self.app = app
        return app

    async def stop(self) -> None:
        if self.app is None:
            return
        app, self.app = self.app, None
        assert app.updater is not None
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)

    async def restart(self) -> Application:  # type: ignore[type-arg]
        await self.stop()
        return await self.start()


def bot_settings(fleet: TestFleet, telegram: FakeTelegram, tmp_path: Path, **overrides: Any) -> BotSettings:
    return BotSettings(
        env="test",
        gateway_url=fleet.url("api-gateway"),
        telegram_bot_token=telegram.token,
        telegram_api_base_url=telegram.base_url,
        telegram_file_base_url=telegram.base_file_url,
        service_client_secret=fleet.client_secret("telegram-bot"),
        rabbitmq_url=fleet.rabbit_url,
        redis_url=fleet.redis_url,
        offline_db_path=str(tmp_path / "offline.sqlite3"),
        **overrides,
    )


@pytest.fixture
async def bot(fleet: TestFleet, telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[BotRunner]:
    runner = BotRunner(bot_settings(fleet, telegram, tmp_path))
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def new_user(telegram: FakeTelegram, name: str, language_code: str = "ru") -> FakeUser:
    """A Telegram account nobody has used yet (ids are unique across test runs on the shared fleet)."""
    return telegram.user(uuid.uuid4().int % 10**12 + 10**9, name, language_code)


async def redis_flush(url: str) -> None:
    redis = Redis.from_url(url)
    await redis.flushdb()
    await redis.aclose()
