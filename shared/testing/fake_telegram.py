"""A fake Telegram Bot API server on loopback, for the real python-telegram-bot in tests and the sandbox.

The bot under test is configured with ``base_url=fake.base_url`` and ``base_file_url=fake.base_file_url``
and talks HTTP to this server exactly as it would to api.telegram.org. The test plays the users::

    async with FakeTelegram() as telegram:
        ann = telegram.user(1001, "Ann", language_code="en")
        await telegram.send_text(ann, "/start abc")
        reply = await telegram.wait_for("sendMessage", chat_id=ann.id)
        await telegram.press(ann, reply, "menu:schedule")        # a button under the bot's message
        await telegram.send_document(ann, "hw.pdf", b"%PDF...")  # a file, downloadable by the bot

Every method the bot calls is recorded (``calls``); updates reach the bot through long polling
(``getUpdates``) or, after ``setWebhook``, are POSTed to its webhook. Faults are injected per method
and chat: ``fail_next("sendMessage", status=429, retry_after=3)``, and ``block(chat_id)`` makes every
send to that chat answer 403 as Telegram does for a user who blocked the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

DEFAULT_TOKEN = "123456:TEST-fake-telegram-token"
BOT_USER = {"id": 777000, "is_bot": True, "first_name": "RepitBot", "username": "repitbot_test_bot"}

# Form fields PTB sends as plain strings (everything else arrives JSON-encoded).
_TEXT_FIELDS = frozenset(
    {"text", "caption", "parse_mode", "callback_query_id", "url", "secret_token", "file_id", "description", "emoji"}
)
_SENDS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendChatAction", "editMessageText", "copyMessage"})


@dataclass(frozen=True)
class FakeUser:
    id: int
    first_name: str
    language_code: str = "ru"
    username: str | None = None

    def as_telegram(self) -> dict[str, Any]:
        user = {"id": self.id, "is_bot": False, "first_name": self.first_name, "language_code": self.language_code}
        return user | ({"username": self.username} if self.username else {})

    def chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private", "first_name": self.first_name}


@dataclass
class Call:
    """One Bot API request the bot made, with its parameters decoded and any uploaded files' bytes."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    result: Any = None
    status: int = 200

    @property
    def chat_id(self) -> int | None:
        chat = self.params.get("chat_id")
        return int(chat) if chat is not None and str(chat).lstrip("-").isdigit() else None

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline keyboard's buttons, row by row flattened."""
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def button(self, label_part: str) -> dict[str, Any]:
        """The inline button whose text contains ``label_part`` (case-insensitive)."""
        for button in self.buttons:
            if label_part.lower() in button["text"].lower():
                return button
        raise LookupError(f"no button with {label_part!r} in {[b['text'] for b in self.buttons]}")


@dataclass
class _Fault:
    method: str
    chat_id: int | None
    status: int
    description: str
    retry_after: int | None
    times: int


class FakeTelegram:
    def __init__(self, token: str = DEFAULT_TOKEN, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self._host, self._port = host, port
        self.calls: list[Call] = []
        self.files: dict[str, tuple[bytes, str]] = {}  # file_id -> (content, file name)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._new_update = asyncio.Condition()
        self._new_call = asyncio.Condition()
        self._faults: list[_Fault] = []
        self.blocked: set[int] = set()
        self.webhook_url: str | None = None
        self._webhook_secret: str | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.on_call: list[Callable[[Call], None]] = []  # e.g. the sandbox page's live feed
        self._extra_routes: list[web.RouteDef] = []

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        app.router.add_routes(self._extra_routes)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._http = aiohttp.ClientSession()
        return self

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        """More pages on the same server (the sandbox's web chat); before ``start``."""
        self._extra_routes.extend(routes)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """For ``Bot(base_url=...)`` / ``ApplicationBuilder().base_url(...)``: PTB appends the token."""
        return f"http://{self._host}:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self._host}:{self._port}/file/bot"

    # --- the users' side -------------------------------------------------------------------------

    def user(
        self, telegram_id: int, first_name: str, language_code: str = "ru", username: str | None = None
    ) -> FakeUser:
        return FakeUser(telegram_id, first_name, language_code, username)

    async def send_text(self, user: FakeUser, text: str, reply_to: Call | None = None) -> dict[str, Any]:
        message = self._message_from(user, text=text)
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            message["reply_to_message"] = self._as_message(reply_to)
        return await self._feed({"message": message})

    async def press(self, user: FakeUser, on: Call, button: str) -> dict[str, Any]:
        """Press the inline button whose label contains ``button`` (or whose data equals it)."""
        data = next((b["callback_data"] for b in on.buttons if b.get("callback_data") == button), None)
        if data is None:
            data = on.button(button)["callback_data"]
        query = {
            "id": uuid.uuid4().hex,
            "from": user.as_telegram(),
            "chat_instance": str(user.id),
            "data": data,
            "message": self._as_message(on),
        }
        return await self._feed({"callback_query": query})

    async def send_document(
        self,
        user: FakeUser,
        file_name: str,
        content: bytes,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        reply_to: Call | None = None,
    ) -> dict[str, Any]:
        file_id = self._store(content, file_name)
        document = {"file_id": file_id, "file_unique_id": file_id[:16], "file_name": file_name}
        message = self._message_from(user, document=document | {"mime_type": mime_type, "file_size": len(content)})
        if caption:
            message["caption"] = caption
        if reply_to is not None:
            message["reply_to_message"] = self._as_message(reply_to)
        return await self._feed({"message": message})

    async def send_photo(self, user: FakeUser, content: bytes, caption: str | None = None) -> dict[str, Any]:
        file_id = self._store(content, "photo.jpg")
        size = {"file_id": file_id, "file_unique_id": file_id[:16], "width": 640, "height": 480}
        message = self._message_from(user, photo=[size | {"file_size": len(content)}])
        if caption:
            message["caption"] = caption
        return await self._feed({"message": message})

    # --- what the bot did ------------------------------------------------------------------------

    def sent(self, method: str | None = None, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if (method is None or c.method == method) and (chat_id is None or c.chat_id == chat_id) and c.status == 200
        ]

    async def wait_for(
        self,
        method: str | tuple[str, ...],
        *,
        chat_id: int | None = None,
        where: Callable[[Call], bool] | None = None,
        after: int = 0,
        timeout: float = 20,  # noqa: ASYNC109 (a bounded wait is the point, as in shared/testing/events.py)
    ) -> Call:
        """The first successful call (from index ``after`` on) matching; fails the test after ``timeout``."""
        methods = (method,) if isinstance(method, str) else method

        def found() -> Call | None:
            for call in self.calls[after:]:
                if call.status != 200 or call.method not in methods:
                    continue
                if chat_id is not None and call.chat_id != chat_id:
                    continue
                if where is None or where(call):
                    return call
            return None

        async with self._new_call:
            try:
                await asyncio.wait_for(self._new_call.wait_for(found), timeout)
            except TimeoutError:
                seen = [(c.method, c.chat_id, c.text[:80]) for c in self.calls[after:]]
                raise AssertionError(f"the bot never called {methods} for chat {chat_id}; it called {seen}") from None
        result = found()
        assert result is not None
        return result

    def mark(self) -> int:
        """An index into ``calls``: pass it as ``after=`` to wait only for what comes next."""
        return len(self.calls)

    # --- faults ----------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        status: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        text = description or (f"Too Many Requests: retry after {retry_after or 0}" if status == 429 else "Error")
        self._faults.append(_Fault(method, chat_id, status, text, retry_after if status == 429 else None, times))

    def block(self, chat_id: int) -> None:
        self.blocked.add(chat_id)

    # --- the server ------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files)
        handler = getattr(self, f"_m_{method}", None)
        fault = self._take_fault(method, call.chat_id)
        if fault is not None:
            call.status = fault.status
            response = _error(fault.status, fault.description, fault.retry_after)
        elif method in _SENDS and call.chat_id in self.blocked:
            call.status = 403
            response = _error(403, "Forbidden: bot was blocked by the user")
        elif handler is None:
            call.status = 404
            response = _error(404, "Not Found: method not found")
        else:
            if method == "getUpdates":  # long polling: not recorded until it returns, and not a "call" to wait for
                result = await handler(call)
                return web.json_response({"ok": True, "result": result})
            try:
                call.result = await handler(call)
            except _BadRequest as bad:
                call.status = 400
                response = _error(400, f"Bad Request: {bad}")
            else:
                response = web.json_response({"ok": True, "result": call.result})
        await self._record(call)
        return response

    async def _download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_path"].split("/")[-1]
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id][0])

    async def _record(self, call: Call) -> None:
        async with self._new_call:
            self.calls.append(call)
            self._new_call.notify_all()
        for listener in self.on_call:
            listener(call)

    def _take_fault(self, method: str, chat_id: int | None) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.chat_id in (None, chat_id):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- Bot API methods -------------------------------------------------------------------------

    async def _m_getMe(self, call: Call) -> dict[str, Any]:
        return BOT_USER | {"can_join_groups": False, "can_read_all_group_messages": False}

    async def _m_getUpdates(self, call: Call) -> list[dict[str, Any]]:
        offset = int(call.params.get("offset") or 0)
        timeout = float(call.params.get("timeout") or 0)
        async with self._new_update:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates and timeout:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new_update.wait_for(lambda: bool(self._updates)), timeout)
            return list(self._updates)

    async def _m_setWebhook(self, call: Call) -> bool:
        self.webhook_url = call.params.get("url") or None
        self._webhook_secret = call.params.get("secret_token")
        return True

    async def _m_deleteWebhook(self, call: Call) -> bool:
        self.webhook_url = None
        return True

    async def _m_getWebhookInfo(self, call: Call) -> dict[str, Any]:
        return {"url": self.webhook_url or "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_setMyCommands(self, call: Call) -> bool:
        return True

    async def _m_deleteMyCommands(self, call: Call) -> bool:
        return True

    async def _m_setChatMenuButton(self, call: Call) -> bool:
        return True

    async def _m_answerCallbackQuery(self, call: Call) -> bool:
        return True

    async def _m_sendChatAction(self, call: Call) -> bool:
        return True

    async def _m_deleteMessage(self, call: Call) -> bool:
        return True

    async def _m_sendMessage(self, call: Call) -> dict[str, Any]:
        if not call.text.strip():
            raise _BadRequest("message text is empty")
        return self._bot_message(call, text=call.params["text"])

    async def _m_editMessageText(self, call: Call) -> dict[str, Any]:
        return self._bot_message(call, text=call.params.get("text", ""), message_id=call.params.get("message_id"))

    async def _m_editMessageReplyMarkup(self, call: Call) -> dict[str, Any]:
        return self._bot_message(call, text="", message_id=call.params.get("message_id"))

    async def _m_sendPhoto(self, call: Call) -> dict[str, Any]:
        file_id = self._store(call.files.get("photo", b""), "photo.png")
        photo = [{"file_id": file_id, "file_unique_id": file_id[:16], "width": 800, "height": 600}]
        return self._bot_message(call, photo=photo, caption=call.params.get("caption"))

    async def _m_sendDocument(self, call: Call) -> dict[str, Any]:
        existing = call.params.get("document")
        if isinstance(existing, str) and existing in self.files:  # re-sent by file_id
            file_id, name = existing, self.files[existing][1]
        else:
            content = call.files.get("document", b"")
            name = call.params.get("_document_name") or "document"
            file_id = self._store(content, name)
        document = {"file_id": file_id, "file_unique_id": file_id[:16], "file_name": name}
        return self._bot_message(call, document=document, caption=call.params.get("caption"))

    async def _m_getFile(self, call: Call) -> dict[str, Any]:
        file_id = call.params.get("file_id", "")
        if file_id not in self.files:
            raise _BadRequest("invalid file_id")
        content, _ = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id[:16],
            "file_size": len(content),
            "file_path": f"documents/{file_id}",
        }

    # --- helpers ---------------------------------------------------------------------------------

    def _store(self, content: bytes, name: str) -> str:
        file_id = "F" + uuid.uuid4().hex
        self.files[file_id] = (content, name)
        return file_id

    def _message_from(self, user: FakeUser, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": user.chat(),
            "from": user.as_telegram(),
            **content,
        }

    def _bot_message(self, call: Call, message_id: Any = None, **content: Any) -> dict[str, Any]:
        chat_id = call.chat_id
        if chat_id is None:
            raise _BadRequest("chat not found")
        message = {
            "message_id": int(message_id) if message_id is not None else next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            **{k: v for k, v in content.items() if v is not None},
        }
        if call.params.get("reply_markup"):
            message["reply_markup"] = call.params["reply_markup"]
        return message

    def _as_message(self, call: Call) -> dict[str, Any]:
        """The message a recorded call produced, as a user's client would hold it."""
        if isinstance(call.result, dict) and "message_id" in call.result:
            return call.result
        raise ValueError(f"{call.method} produced no message")

    async def _feed(self, content: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **content}
        if self.webhook_url:
            headers = {"X-Telegram-Bot-Api-Secret-Token": self._webhook_secret} if self._webhook_secret else {}
            assert self._http is not None
            async with self._http.post(self.webhook_url, json=update, headers=headers) as answer:
                assert answer.status == 200, f"the webhook answered {answer.status}"
            return update
        async with self._new_update:
            self._updates.append(update)
            self._new_update.notify_all()
        return update


class _BadRequest(Exception):
    pass


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """PTB sends form fields (strings raw, other values JSON-encoded) or multipart with files."""
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            if part.filename is not None:
                files[part.name or ""] = await part.read()
                params[f"_{part.name}_name"] = part.filename
            else:
                params[part.name or ""] = await part.text()
    elif request.content_type == "application/json":
        params = await request.json() if request.can_read_body else {}
    elif request.can_read_body:
        params = dict(await request.post())  # type: ignore[arg-type]
    decoded = {key: _decode(key, value) for key, value in params.items()}
    for name in list(files):  # attach://name references and plain file fields
        for key, value in decoded.items():
            if value == f"attach://{name}":
                files[key] = files[name]
    return decoded, files


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _TEXT_FIELDS or key.startswith("_"):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
