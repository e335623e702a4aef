"""The pieces every screen uses: who is asking (session, language), answering with buttons, and
turning the fleet's answers (unavailable, refused) into words instead of silence or a traceback.

Callback data is ``area:action[:argument...]`` (Telegram allows 64 bytes: a UUID fits).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from services.telegram_bot import context as bot_context
from services.telegram_bot.api import ApiError, Unavailable, UserSession
from services.telegram_bot.context import Bot
from services.telegram_bot.i18n import language_of, t

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Button = tuple[str, str]  # (label, callback data)


@dataclass
class Caller:
    """The user behind an update: their session (None before /start), language and chat."""

    bot: Bot
    session: UserSession | None
    lang: str
    chat_id: int
    telegram_id: int

    def t(self, key: str, **params: Any) -> str:
        return t(self.lang, key, **params)

    @property
    def user(self) -> UserSession:
        """The session of a signed-in caller (handlers behind ``signed_in``)."""
        assert self.session is not None
        return self.session

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.session.timezone if self.session else "Europe/Moscow")

    def local(self, moment: datetime | str) -> datetime:
        """A time from the API (ISO with offset) in the caller's time zone."""
        value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        return value.astimezone(self.zone)

    def when(self, moment: datetime | str) -> str:
        """``dd.mm HH:MM`` in the caller's zone (the same in both languages)."""
        return self.local(moment).strftime("%d.%m %H:%M")


def money(minor: int, currency: str = "RUB") -> str:
    """Minor units as the user reads them: 150000 RUB → "1 500 ₽"; kopecks shown only when there are any."""
    sign, minor = ("−" if minor < 0 else ""), abs(minor)
    whole, cents = divmod(minor, 100)
    text = f"{whole:,}".replace(",", "\u00a0") + (f",{cents:02d}" if cents else "")
    symbol = {"RUB": "₽", "USD": "$", "EUR": "€"}.get(currency, currency)
    return f"{sign}{text}\u00a0{symbol}"


async def read_view(who: Caller, view: str, fetch: Callable[[], Awaitable[Any]]) -> tuple[Any, datetime | None]:
    """Fresh data for a read-only view, remembered for bad times; when the fleet is down, the last copy
    and the time it was fetched (show it as "data as of HH:MM"). Unavailable if there is no copy."""
    offline = who.bot.offline
    try:
        data = await fetch()
    except Unavailable:
        cached = await offline.recall(who.telegram_id, view) if offline is not None else None
        if cached is None:
            raise
        return cached.data, cached.fetched_at
    if offline is not None:
        await offline.remember(who.telegram_id, view, data)
    return data, None


def stale_mark(who: Caller, fetched_at: datetime | None) -> str:
    """The "data as of HH:MM" line for a cached answer, or nothing for a fresh one."""
    return "" if fetched_at is None else who.t("stale_data", time=who.local(fetched_at).strftime("%H:%M")) + "\n\n"


async def caller(update: Update, context: Context) -> Caller:
    bot = bot_context.of(context)
    user = update.effective_user
    assert user is not None and update.effective_chat is not None
    session = await bot.sessions.get(user.id)
    lang = language_of(user.language_code, session.language if session else None)
    return Caller(bot, session, lang, update.effective_chat.id, user.id)


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def answer(update: Update, text: str, rows: Sequence[Sequence[Button]] | None = None) -> Message:
    """Reply in the chat (a pressed button's spinner is stopped first)."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    assert chat is not None
    markup = keyboard(rows) if rows else None
    return await chat.send_message(text, reply_markup=markup)


def callback_args(update: Update) -> list[str]:
    """The parts of the pressed button's data after ``area:action``."""
    data = update.callback_query.data if update.callback_query else ""
    return (data or "").split(":")[2:]


def refusal(lang: str, error: ApiError) -> str:
    """A 4xx in the user's words: the fields a 422 names, else the service's message."""
    fields = error.field_errors()
    if error.status == 422 and fields:
        return t(lang, "invalid_fields", fields=", ".join(fields))
    if error.status in (403, 404):
        return t(lang, "not_allowed") if error.status == 403 else t(lang, "not_found")
    return t(lang, "refused", reason=error.message)


Handler = Callable[[Update, Context, Caller], Awaitable[None]]


def signed_in(*roles: str) -> Callable[[Handler], Callable[[Update, Context], Awaitable[None]]]:
    """Run the handler for a signed-in user (of one of ``roles``, if given); others are told why not."""

    def wrap(handler: Handler) -> Callable[[Update, Context], Awaitable[None]]:
        @functools.wraps(handler)
        async def run(update: Update, context: Context) -> None:
            who = await caller(update, context)
            if who.session is None:
                await answer(update, who.t("need_start"))
                return
            if roles and who.session.role not in roles:
                await answer(update, who.t("not_allowed"))
                return
            await handler(update, context, who)

        return run

    return wrap
