"""Running the bot: without a token it exits saying how to get one; /health and /metrics answer;
``main.run`` receives updates by long polling by default and by a secret-checked webhook when configured."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.telegram_bot import health, main
from services.telegram_bot.app import build_application
from services.telegram_bot.settings import BotSettings
from services.telegram_bot.tests.conftest import bot_settings, new_user
from shared.testing.fake_telegram import Call, FakeTelegram
from shared.testing.fleet import TestFleet

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
    app = build_application(BotSettings(env="test", telegram_bot_token="1:x", service_client_secret="test-secret"))
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def refuses_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def running(settings: BotSettings) -> tuple[asyncio.Task[None], asyncio.Event]:
    """``main.run`` as a task, once it receives updates; set the returned event to stop it."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(main.run(settings, stop=stop, ready=ready))
    started = asyncio.create_task(ready.wait())
    await asyncio.wait({task, started}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        started.cancel()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pytest.fail(f"main.run never started receiving updates: {task.exception() if task.done() else 'hung'}")
    return task, stop


async def test_webhook_mode_by_configuration(fleet: TestFleet, telegram: FakeTelegram, tmp_path: Path) -> None:
    hook_port, health_port = free_port(), free_port()
    url = f"http://127.0.0.1:{hook_port}/telegram/{uuid.uuid4().hex}"
    secret = uuid.uuid4().hex
    settings = bot_settings(
        fleet,
        telegram,
        tmp_path,
        port=health_port,
        webhook_url=url,
        webhook_listen="127.0.0.1",
        webhook_port=hook_port,
        webhook_secret=secret,
    )
    task, stop = await running(settings)
    try:
        hook = await telegram.wait_for("setWebhook")
        assert hook.params["url"] == url
        assert hook.params["secret_token"] == secret
        assert telegram.webhook_url == url  # so fed updates are POSTed to the bot, with the secret header

        # a forged /start: no secret or a wrong one is refused before PTB queues anything
        forger = new_user(telegram, "Mallory", language_code="en")
        forged = {
            "update_id": 10**6,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": forger.chat(),
                "from": forger.as_telegram(),
                "text": "/start",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            },
        }
        async with aiohttp.ClientSession() as http:
            for headers in ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {}):
                async with http.post(url, json=forged, headers=headers) as refused:
                    assert refused.status == 403
            async with http.get(f"http://127.0.0.1:{health_port}/health") as alive:  # PORT serves /health
                assert alive.status == 200

        # the same user's real /start arrives through the webhook and registers them only now
        await telegram.send_text(forger, "/start")
        welcome = await telegram.wait_for("sendMessage", chat_id=forger.id)
        assert "registered as a tutor" in welcome.text  # not "Welcome back": the forged one had no effect
        assert len(telegram.sent("sendMessage", chat_id=forger.id)) == 1
        assert not telegram.sent("getUpdates")
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    # PTB stops its webhook server but leaves the webhook registered (updates wait at Telegram for the next start)
    assert not telegram.sent("deleteWebhook")
    assert telegram.webhook_url == url
    assert refuses_connections(hook_port) and refuses_connections(health_port)


async def test_long_polling_is_the_default(
    fleet: TestFleet, telegram: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fake answers getUpdates without recording it: count the polls on the way in
    polls: list[Call] = []
    get_updates: Callable[[Call], Awaitable[list[dict[str, Any]]]] = telegram._m_getUpdates

    async def counted(call: Call) -> list[dict[str, Any]]:
        polls.append(call)
        return await get_updates(call)

    monkeypatch.setattr(telegram, "_m_getUpdates", counted)
    health_port = free_port()
    task, _ = await running(bot_settings(fleet, telegram, tmp_path, port=health_port))
    try:
        tutor = new_user(telegram, "Olga", language_code="en")
        await telegram.send_text(tutor, "/start")
        welcome = await telegram.wait_for("sendMessage", chat_id=tutor.id)
        assert "registered as a tutor" in welcome.text
        assert polls
        assert not telegram.sent("setWebhook")
        assert telegram.sent("deleteWebhook")  # PTB clears any webhook before polling, as Telegram requires
    finally:
        # what the process manager sends; main.run's handler catches it (never the default, which kills pytest)
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 60)
    assert refuses_connections(health_port)


async def test_a_started_bot_times_its_collections_and_keeps_its_start_up_heap_out_of_their_reach(
    fleet: TestFleet, telegram: FakeTelegram, tmp_path: Path
) -> None:
    """As every service does once started (shared.collector.after_start): its /metrics has the pauses."""
    installed = list(gc.callbacks)  # as a fresh process: a service started earlier in this session did it
    gc.callbacks.clear()
    gc.unfreeze()
    health_port = free_port()
    task, stop = await running(bot_settings(fleet, telegram, tmp_path, port=health_port))
    try:
        assert gc.get_freeze_count() > 0
        gc.collect()
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{health_port}/metrics") as metrics:
            text = await metrics.text()
        full = 'python_gc_pause_seconds_count{generation="2",service="telegram-bot"}'
        assert any(line.startswith(full) and float(line.split()[-1]) >= 1 for line in text.splitlines()), text
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        gc.callbacks[:] = installed
