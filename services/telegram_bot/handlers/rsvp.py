"""The answers under a lesson reminder: "I'll come" (``rsvp:yes:<lesson>``) and "I can't come"
(``rsvp:no:<lesson>``); notification-service sends the reminder without buttons, the bot adds these two
when it renders a student's reminder (notifications.buttons_of).

"Can't" cancels the lesson as the student (``POST /api/v1/lessons/{id}/cancel``): lesson-service decides
whether it is chargeable (inside the late window it is). The tutor learns it from notification-service's
notice of the cancellation (with the student's name and the charge), as from a cancellation made anywhere
else; the bot telling them too made two messages of one change. "Yes" changes nothing, so nobody else
tells the tutor: the bot does.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler

from services.telegram_bot.handlers.common import Caller, Context, answer, callback_args, signed_in
from services.telegram_bot.i18n import t

log = logging.getLogger(__name__)


async def _tell_tutor_coming(context: Context, who: Caller, lesson: dict[str, Any]) -> None:
    chat = await who.bot.sessions.chat_of(str(lesson["tutor_id"]))
    if chat is None:
        return  # the tutor has no chat with the bot: nobody to tell
    tutor = await who.bot.sessions.get(chat)
    lang = tutor.language if tutor else "ru"
    zone = ZoneInfo(tutor.timezone if tutor else "Europe/Moscow")  # the tutor's own zone, not the student's
    zone_time = datetime.fromisoformat(lesson["starts_at"]).astimezone(zone)
    text = t(
        lang,
        "rsvp_tutor_coming",
        name=who.user.full_name or "—",
        subject=lesson.get("subject") or "",
        time=zone_time.strftime("%d.%m %H:%M"),
    )
    try:
        await context.bot.send_message(chat, text)
    except TelegramError as exc:  # the student's answer stands; a tutor who blocked the bot is not retried here
        log.warning("could not tell the tutor about an RSVP", extra={"error": repr(exc)})


@signed_in("student")
async def coming(update: Update, context: Context, who: Caller) -> None:
    (lesson_id,) = callback_args(update)[:1]
    lesson = await who.bot.api.get(who.user, f"/api/v1/lessons/{lesson_id}")
    if lesson.get("status") != "scheduled":
        await answer(update, who.t("rsvp_not_scheduled"))
        return
    await answer(
        update, who.t("rsvp_confirmed", subject=lesson.get("subject") or "", time=who.when(lesson["starts_at"]))
    )
    await _tell_tutor_coming(context, who, lesson)


@signed_in("student")
async def cannot_come(update: Update, context: Context, who: Caller) -> None:
    (lesson_id,) = callback_args(update)[:1]
    lesson = await who.bot.api.get(who.user, f"/api/v1/lessons/{lesson_id}")
    if lesson.get("status") != "scheduled":
        await answer(update, who.t("rsvp_not_scheduled"))
        return
    # one key per press: a retried request (timeout) cancels once
    cancelled = await who.bot.api.post(
        who.user,
        f"/api/v1/lessons/{lesson_id}/cancel",
        {"reason": who.t("rsvp_reason")},
        key=who.bot.api.new_key(),
    )
    chargeable = bool(cancelled.get("chargeable"))
    key = "rsvp_cancelled_chargeable" if chargeable else "rsvp_cancelled"
    await answer(update, who.t(key, subject=cancelled.get("subject") or "", time=who.when(cancelled["starts_at"])))


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(coming, pattern=r"^rsvp:yes:"))
    app.add_handler(CallbackQueryHandler(cannot_come, pattern=r"^rsvp:no:"))
