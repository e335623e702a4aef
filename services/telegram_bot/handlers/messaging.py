"""Messages between a tutor and their families, and the tutor's broadcast.

- ``msg:tutor``: a student or parent writes (text, a photo or a file); the bot delivers it to their
  tutor's chat as "From <name>:" with a Reply button (``msg:reply:<telegram id>``) — the tutor's next
  message goes back to that user. Replying (Telegram's Reply) to the delivered message works too.
- ``broadcast:new`` (tutors): a text → a preview with Send/Cancel → every one of the tutor's students
  and their parents who have a chat with the bot; nobody else (the list is the tutor's own contacts at
  user-service) → "sent to N".

Who is linked to whom comes from ``GET /api/v1/users/me/contacts``; a user's chat from the bot's session
store (a user who never pressed /start has none and cannot be reached).
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot as TelegramBot
from telegram import Message, Update
from telegram.error import Forbidden
from telegram.ext import Application, CallbackQueryHandler

from services.telegram_bot.handlers.common import Caller, Context, answer, callback_args, keyboard, signed_in
from services.telegram_bot.handlers.flows import flow, pressed, reply
from services.telegram_bot.i18n import t
from services.telegram_bot.state import Conversation

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
BROADCAST_LIMIT = 3500


async def contacts(who: Caller) -> list[dict[str, Any]]:
    answer_ = await who.bot.api.get(who.user, "/api/v1/users/me/contacts")
    return list(answer_["items"])


def cancel_row(who: Caller) -> list[tuple[str, str]]:
    return [(who.t("btn_cancel"), "flow:cancel")]


def has_content(message: Message | None) -> bool:
    return message is not None and bool((message.text and message.text.strip()) or message.document or message.photo)


async def deliver(
    bot: TelegramBot, chat_id: int, message: Message, header: str, rows: list[list[tuple[str, str]]]
) -> Message:
    """The user's text, photo or file in another chat under ``header`` (files re-sent by file id)."""
    markup = keyboard(rows)
    if message.document is not None:
        caption = f"{header}\n{message.caption or ''}".strip()[:CAPTION_LIMIT]
        return await bot.send_document(chat_id, message.document.file_id, caption=caption, reply_markup=markup)
    if message.photo:
        caption = f"{header}\n{message.caption or ''}".strip()[:CAPTION_LIMIT]
        return await bot.send_photo(chat_id, message.photo[-1].file_id, caption=caption, reply_markup=markup)
    return await bot.send_message(chat_id, f"{header}\n{message.text or ''}"[:TEXT_LIMIT], reply_markup=markup)


# --- a student or parent writes to the tutor -----------------------------------------------------


async def begin_message(update: Update, who: Caller, tutor: dict[str, Any]) -> None:
    await who.bot.conversations.begin(
        who.chat_id, "msg_tutor", "text", to=tutor["id"], to_name=tutor["full_name"], to_lang=tutor["language"]
    )
    await answer(update, who.t("msg_write", name=tutor["full_name"]), [cancel_row(who)])


@signed_in("student", "parent")
async def write_to_tutor(update: Update, context: Context, who: Caller) -> None:
    tutors = list({c["id"]: c for c in await contacts(who) if c["relation"] == "tutor"}.values())
    if not tutors:
        await answer(update, who.t("msg_no_tutor"))
        return
    if len(tutors) == 1:
        await begin_message(update, who, tutors[0])
        return
    rows = [[(tutor["full_name"][:60], f"msg:to:{tutor['id']}")] for tutor in tutors]
    await answer(update, who.t("msg_choose_tutor"), [*rows, cancel_row(who)])


@signed_in("student", "parent")
async def write_to_chosen_tutor(update: Update, context: Context, who: Caller) -> None:
    [tutor_id, *_] = callback_args(update) or [""]
    tutor = next((c for c in await contacts(who) if c["relation"] == "tutor" and c["id"] == tutor_id), None)
    if tutor is None:
        await answer(update, who.t("msg_no_tutor"))
        return
    await begin_message(update, who, tutor)


@flow("msg_tutor")
async def message_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    message = update.effective_message
    if update.callback_query is not None or not has_content(message):
        await answer(update, who.t("msg_need_content"), [cancel_row(who)])
        return
    assert message is not None
    data = conversation.data
    chat_id = await who.bot.sessions.chat_of(data["to"])
    await who.bot.conversations.end(who.chat_id)
    if chat_id is None:
        await answer(update, who.t("msg_tutor_offline", name=data["to_name"]))
        return
    lang = data.get("to_lang") or "ru"
    header = t(lang, "msg_from", name=who.user.full_name)
    try:
        sent = await deliver(
            context.bot, chat_id, message, header, [[(t(lang, "msg_btn_reply"), f"msg:reply:{who.telegram_id}")]]
        )
    except Forbidden:
        await answer(update, who.t("msg_undeliverable"))
        return
    # the tutor may also answer with Telegram's Reply on the delivered message
    await who.bot.conversations.expect_reply(chat_id, sent.message_id, "msg_answer", to=who.telegram_id)
    await answer(update, who.t("msg_sent", name=data["to_name"]))


# --- the tutor answers ---------------------------------------------------------------------------


async def family_member(who: Caller, telegram_id: int) -> dict[str, Any] | None:
    """The tutor's student or parent behind a Telegram id, or None (not theirs, or unknown to the bot)."""
    session = await who.bot.sessions.get(telegram_id)
    if session is None:
        return None
    return next(
        (c for c in await contacts(who) if c["id"] == session.user_id and c["relation"] in ("student", "parent")),
        None,
    )


@signed_in("tutor")
async def answer_button(update: Update, context: Context, who: Caller) -> None:
    [raw_id, *_] = callback_args(update) or [""]
    member = await family_member(who, int(raw_id)) if raw_id.isdigit() else None
    if member is None:
        await answer(update, who.t("not_found"))
        return
    await who.bot.conversations.begin(
        who.chat_id, "msg_reply", "text", to=int(raw_id), to_name=member["full_name"], to_lang=member["language"]
    )
    await answer(update, who.t("msg_write_answer", name=member["full_name"]), [cancel_row(who)])


async def send_answer(update: Update, context: Context, who: Caller, to: int, name: str, lang: str) -> None:
    message = update.effective_message
    assert message is not None
    header = t(lang, "msg_answer_from", name=who.user.full_name)
    try:
        await deliver(context.bot, to, message, header, [[(t(lang, "msg_btn_write_back"), "msg:tutor")]])
    except Forbidden:
        await answer(update, who.t("msg_undeliverable"))
        return
    await answer(update, who.t("msg_delivered", name=name))


@flow("msg_reply")
async def answer_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    if update.callback_query is not None or not has_content(update.effective_message):
        await answer(update, who.t("msg_need_content"), [cancel_row(who)])
        return
    data = conversation.data
    await who.bot.conversations.end(who.chat_id)
    await send_answer(update, context, who, int(data["to"]), data["to_name"], data.get("to_lang") or "ru")


@reply("msg_answer")
async def answer_by_reply(update: Update, context: Context, who: Caller, target: dict[str, Any]) -> None:
    if who.session is None or who.session.role != "tutor":
        await answer(update, who.t("not_allowed"))
        return
    if not has_content(update.effective_message):
        await answer(update, who.t("msg_need_content"))
        return
    member = await family_member(who, int(target["to"]))
    if member is None:  # unlinked since the message came
        await answer(update, who.t("not_found"))
        return
    await send_answer(update, context, who, int(target["to"]), member["full_name"], member["language"])


# --- broadcast -----------------------------------------------------------------------------------


@signed_in("tutor")
async def new_broadcast(update: Update, context: Context, who: Caller) -> None:
    await who.bot.conversations.begin(who.chat_id, "broadcast", "text")
    await answer(update, who.t("msg_broadcast_prompt"), [cancel_row(who)])


@flow("broadcast")
async def broadcast_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    button = pressed(update)
    if button is not None:
        if button[:1] == ["send"] and conversation.step == "confirm":
            await who.bot.conversations.end(who.chat_id)  # first: a second press finds no flow, sends nothing
            count = await send_broadcast(context, who, conversation.data["text"])
            await answer(update, who.t("msg_broadcast_sent", count=count))
        else:
            await answer(update, who.t("msg_broadcast_need_text"), [cancel_row(who)])
        return
    message = update.effective_message
    text = (message.text or "").strip() if message is not None else ""
    if not text or len(text) > BROADCAST_LIMIT:
        await answer(update, who.t("msg_broadcast_need_text"), [cancel_row(who)])
        return
    conversation.step, conversation.data["text"] = "confirm", text
    await who.bot.conversations.save(who.chat_id, conversation)
    preview = who.t("msg_broadcast_preview", text=text)
    await answer(update, preview, [[(who.t("msg_btn_send"), "flow:broadcast:send"), *cancel_row(who)]])


async def send_broadcast(context: Context, who: Caller, text: str) -> int:
    """To each of the tutor's students and parents with a chat, once each; the number reached."""
    recipients = {c["id"]: c for c in await contacts(who) if c["relation"] in ("student", "parent")}
    count = 0
    for user_id, person in recipients.items():
        chat_id = await who.bot.sessions.chat_of(user_id)
        if chat_id is None:
            continue
        body = t(person["language"], "msg_broadcast_text", name=who.user.full_name, text=text)
        try:
            await context.bot.send_message(chat_id, body[:TEXT_LIMIT])
        except Forbidden:
            await who.bot.sessions.mark_blocked(chat_id)
            continue
        count += 1
    return count


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(write_to_tutor, pattern=r"^msg:tutor$"))
    app.add_handler(CallbackQueryHandler(write_to_chosen_tutor, pattern=r"^msg:to:"))
    app.add_handler(CallbackQueryHandler(answer_button, pattern=r"^msg:reply:"))
    app.add_handler(CallbackQueryHandler(new_broadcast, pattern=r"^broadcast:new$"))
