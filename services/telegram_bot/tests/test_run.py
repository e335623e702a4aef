"""Running the bot: without a token it exits saying how to get one; /health and /metrics answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from services.telegram_bot import health
from services.telegram_bot.app import build_application
from services.telegram_bot.settings import BotSettings

ROOT = Path(__file__).resolve().parents[3]


def test_without_a_token_it_exits_and_says_how_to_get_one() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_BOT_TOKEN")}
    done = subprocess.run(
        [sys.executable, "-m", "services.telegram_bot.main"],
        cwd=ROOT,
        env=env | {"TELEGRAM_BOT_TOKEN": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in done.stderr and "@BotFather" in done.stderr


async def test_health_and_metrics_answer() -> None:
    app = build_application(BotSettings(env="test", telegram_bot_token="1:x"))
    health.NOTIFICATIONS.labels("delivered").inc()
    async with TestClient(TestServer(health.make_app(app))) as client:
        alive = await client.get("/health")
        assert alive.status == 200
        assert (await alive.json())["status"] == "ok"
        metrics = await client.get("/metrics")
        text = await metrics.text()
        assert 'telegram_bot_notifications_total{outcome="delivered"}' in text
        assert "telegram_bot_offline_queue_length" in text
    await app.bot_data["redis"].aclose()
