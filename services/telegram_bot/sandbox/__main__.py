"""``make sandbox``: try RepitBot in a browser, without Telegram.

The real bot runs against the fake Bot API server (shared/testing/fake_telegram.py) and the local fleet
(`make run` first). The same server serves a small web chat on http://127.0.0.1:8090/ where you pick
who you are (a tutor, a student, a parent: each a Telegram account of its own), type messages and
commands, press the bot's buttons, send files and receive files and notifications, exactly as the bot
would show them in Telegram.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from services.telegram_bot import main as bot_main
from services.telegram_bot.settings import BotSettings
from shared.logging import configure_logging
from shared.runner.dev_secrets import ensure_dev_secrets
from shared.runner.layout import FleetLayout
from shared.runner.servers import Endpoints
from shared.testing.fake_telegram import Call, FakeTelegram, FakeUser

PAGE = Path(__file__).with_name("page.html")
PEOPLE = {  # who the page lets you be; more can be added from the page
    "tutor": (700_000_001, "Irina (tutor)", "ru"),
    "student": (700_000_002, "Petya (student)", "ru"),
    "parent": (700_000_003, "Olga (parent)", "ru"),
    "english student": (700_000_004, "Ann (student)", "en"),
}


class Sandbox:
    """The web chat's API over a FakeTelegram: send as a user, read what the bot sent to that chat."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self.users = {name: telegram.user(uid, first, lang) for name, (uid, first, lang) in PEOPLE.items()}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.page),
            web.get("/sandbox/people", self.people),
            web.get("/sandbox/messages", self.messages),
            web.post("/sandbox/send", self.send),
            web.post("/sandbox/press", self.press),
            web.get("/sandbox/file/{file_id}", self.file),
        ]

    def _user(self, name: str) -> FakeUser:
        if name not in self.users:
            raise web.HTTPNotFound(text=f"unknown person {name!r}")
        return self.users[name]

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")

    async def people(self, request: web.Request) -> web.Response:
        return web.json_response({name: {"id": u.id, "name": u.first_name} for name, u in self.users.items()})

    async def messages(self, request: web.Request) -> web.Response:
        """What the bot sent to this person's chat since index ``after`` (the page polls)."""
        user = self._user(request.query.get("who", ""))
        after = int(request.query.get("after", "0"))
        calls = self.telegram.calls
        shown = [
            _as_bubble(index, call)
            for index, call in enumerate(calls[after:], start=after)
            if call.chat_id == user.id and call.status == 200 and call.method in _SHOWN
        ]
        return web.json_response({"messages": shown, "next": len(calls)})

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._user(body.get("who", ""))
        reply_to = self._call(body.get("reply_to"))
        if body.get("file"):
            content = base64.b64decode(body["file"]["base64"])
            await self.telegram.send_document(
                user, body["file"]["name"], content, body["file"].get("type") or "application/octet-stream",
                caption=body.get("text") or None, reply_to=reply_to,
            )  # fmt: skip
        elif (body.get("text") or "").strip():
            await self.telegram.send_text(user, body["text"].strip(), reply_to=reply_to)
        else:
            raise web.HTTPUnprocessableEntity(text="type a message or choose a file")
        return web.json_response({"ok": True})

    async def press(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = self._call(body.get("message"))
        if call is None:
            raise web.HTTPNotFound(text="no such message")
        await self.telegram.press(self._user(body.get("who", "")), call, body["data"])
        return web.json_response({"ok": True})

    async def file(self, request: web.Request) -> web.Response:
        stored = self.telegram.files.get(request.match_info["file_id"])
        if stored is None:
            raise web.HTTPNotFound()
        content, name = stored
        return web.Response(body=content, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def _call(self, index: Any) -> Call | None:
        if index is None:
            return None
        return self.telegram.calls[int(index)]


_SHOWN = {"sendMessage", "editMessageText", "sendPhoto", "sendDocument"}


def _as_bubble(index: int, call: Call) -> dict[str, Any]:
    result = call.result if isinstance(call.result, dict) else {}
    files = [p["file_id"] for p in result.get("photo", [])[-1:]] + (
        [result["document"]["file_id"]] if "document" in result else []
    )
    return {
        "index": index,
        "method": call.method,
        "text": call.text,
        "buttons": [[{"text": b["text"], "data": b.get("callback_data")} for b in row] for row in _rows(call)],
        "files": files,
        "photo": "photo" in result,
        "file_name": result.get("document", {}).get("file_name"),
    }


def _rows(call: Call) -> list[list[dict[str, Any]]]:
    markup = call.params.get("reply_markup") or {}
    return list(markup.get("inline_keyboard", []))


async def serve(port: int, settings_overrides: dict[str, Any]) -> None:
    telegram = FakeTelegram(port=port)
    sandbox = Sandbox(telegram)
    telegram.add_routes(sandbox.routes())
    await telegram.start()
    settings = BotSettings(
        telegram_bot_token=telegram.token,
        telegram_api_base_url=telegram.base_url,
        telegram_file_base_url=telegram.base_file_url,
        **settings_overrides,
    )
    print(f"RepitBot sandbox: open http://127.0.0.1:{telegram.port}/ (Ctrl+C stops it)", flush=True)
    try:
        await bot_main.run(settings)
    finally:
        await telegram.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="make sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8090, help="the web chat and the fake Bot API (default 8090)")
    args = parser.parse_args()
    configure_logging("telegram-bot", "INFO")
    layout = FleetLayout.development()
    secrets = ensure_dev_secrets(layout.secrets_dir, layout.specs)
    endpoints = Endpoints.from_environment()
    overrides = {
        "service_client_secret": secrets.client_secret("telegram-bot"),
        "gateway_url": "http://127.0.0.1:8000",
        "rabbitmq_url": endpoints.rabbit_url(layout.vhost),
        "redis_url": endpoints.redis_database_url(layout.redis_db),
        "offline_db_path": str(layout.state_dir / "sandbox" / "offline.sqlite3"),
        "port": 8019,  # the sandbox bot's /health, apart from a real bot's 8009
    }
    try:
        asyncio.run(serve(args.port, overrides))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.exit(main())
