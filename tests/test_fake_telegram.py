"""The fake Bot API server speaks enough Telegram for the real python-telegram-bot: long polling,
commands, buttons, files both ways, webhooks, and the faults Telegram answers with (429, blocked)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from shared.testing.fake_telegram import FakeTelegram


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Schedule", callback_data="menu:schedule")]])
    await update.effective_message.reply_text(f"hello {' '.join(context.args or [])}", reply_markup=keyboard)


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text(f"you chose {query.data}")


async def document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.document is not None
    content = await (await message.document.get_file()).download_as_bytearray()
    await message.reply_document(bytes(content[::-1]), filename="reversed.bin", caption=message.document.file_name)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Application]:
    app = (
        Application.builder()
        .token(telegram.token)
        .base_url(telegram.base_url)
        .base_file_url(telegram.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(MessageHandler(filters.Document.ALL, document))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        yield app
        await app.updater.stop()
        await app.stop()


async def test_a_command_a_button_and_a_file_round_trip(telegram: FakeTelegram, bot: Application) -> None:
    ann = telegram.user(1001, "Ann", language_code="en")
    await telegram.send_text(ann, "/start code42")
    greeting = await telegram.wait_for("sendMessage", chat_id=ann.id)
    assert greeting.text == "hello code42" and greeting.button("schedule")["callback_data"] == "menu:schedule"

    await telegram.press(ann, greeting, "Schedule")
    edited = await telegram.wait_for("editMessageText", chat_id=ann.id)
    assert edited.text == "you chose menu:schedule"
    assert telegram.sent("answerCallbackQuery")

    await telegram.send_document(ann, "homework.pdf", b"%PDF-1.4 abc", "application/pdf")
    answer = await telegram.wait_for("sendDocument", chat_id=ann.id)
    assert answer.files["document"] == b"cba 4.1-FDP%" and answer.text == "homework.pdf"


async def test_429_carries_retry_after_and_a_blocked_user_is_forbidden(telegram: FakeTelegram) -> None:
    app = Application.builder().token(telegram.token).base_url(telegram.base_url).build()
    async with app:
        telegram.fail_next("sendMessage", status=429, retry_after=7)
        with pytest.raises(RetryAfter) as limited:
            await app.bot.send_message(1002, "hi")
        with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta
            warnings.simplefilter("ignore")
            waited = limited.value.retry_after
        assert (waited.total_seconds() if isinstance(waited, timedelta) else waited) == 7
        assert (await app.bot.send_message(1002, "hi again")).text == "hi again"

        telegram.block(1003)
        with pytest.raises(Forbidden, match="blocked"):
            await app.bot.send_message(1003, "anyone there?")
    assert [(c.method, c.status) for c in telegram.calls if c.method == "sendMessage"] == [
        ("sendMessage", 429),
        ("sendMessage", 200),
        ("sendMessage", 403),
    ]
