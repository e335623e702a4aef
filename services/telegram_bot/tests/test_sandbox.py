"""`make sandbox`: the web chat over the fake Bot API drives the real bot against the real fleet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.telegram_bot.sandbox.__main__ import Sandbox
from services.telegram_bot.tests.conftest import BotRunner, bot_settings
from shared.testing.fake_telegram import FakeTelegram
from shared.testing.fleet import TestFleet


@pytest.fixture
async def sandbox(fleet: TestFleet, tmp_path: Path) -> AsyncIterator[tuple[FakeTelegram, httpx.AsyncClient]]:
    telegram = FakeTelegram()
    telegram.add_routes(Sandbox(telegram).routes())
    async with telegram:
        runner = BotRunner(bot_settings(fleet, telegram, tmp_path))
        await runner.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{telegram.port}", timeout=10) as page:
                yield telegram, page
        finally:
            await runner.stop()


async def test_a_person_chats_presses_buttons_and_sends_a_file_from_the_page(
    sandbox: tuple[FakeTelegram, httpx.AsyncClient],
) -> None:
    telegram, page = sandbox
    assert "RepitBot sandbox" in (await page.get("/")).text
    people = (await page.get("/sandbox/people")).json()
    tutor_id = people["tutor"]["id"]

    assert (await page.post("/sandbox/send", json={"who": "tutor", "text": "/start"})).json() == {"ok": True}
    await telegram.wait_for("sendMessage", chat_id=tutor_id)
    chat = (await page.get("/sandbox/messages", params={"who": "tutor"})).json()
    welcome = chat["messages"][0]
    assert "репетитор" in welcome["text"]
    invite = next(b for row in welcome["buttons"] for b in row if b["data"] == "invite:new")

    mark = telegram.mark()
    pressed = await page.post(
        "/sandbox/press", json={"who": "tutor", "message": welcome["index"], "data": invite["data"]}
    )
    assert pressed.status_code == 200
    await telegram.wait_for("sendMessage", chat_id=tutor_id, after=mark)
    later = (await page.get("/sandbox/messages", params={"who": "tutor", "after": chat["next"]})).json()
    assert later["messages"] and later["messages"][0]["buttons"]  # the invite screen: student or parent

    refused = await page.post("/sandbox/send", json={"who": "tutor", "text": "  "})
    assert refused.status_code == 422
    assert (await page.get("/sandbox/messages", params={"who": "nobody"})).status_code == 404
