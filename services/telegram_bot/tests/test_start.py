"""Signing in through /start: a new tutor, a student joining by the tutor's invite link, a parent,
per-role command menus, and a bad invite (the real bot, the fake Bot API, the real fleet)."""

from __future__ import annotations

from telegram.constants import BotCommandScopeType

from services.telegram_bot.tests.conftest import BotRunner, new_user
from shared.testing.fake_telegram import FakeTelegram
from shared.testing.fleet import TestFleet


async def test_a_tutor_registers_and_a_student_joins_by_the_invite_link(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor = new_user(telegram, "Irina", language_code="ru")
    await telegram.send_text(tutor, "/start")
    welcome = await telegram.wait_for("sendMessage", chat_id=tutor.id)
    assert "репетитор" in welcome.text
    assert welcome.button("Назначить урок")  # the tutor's main menu, in Russian
    commands = await telegram.wait_for("setMyCommands", where=lambda c: c.params["scope"]["chat_id"] == tutor.id)
    assert commands.params["scope"]["type"] == BotCommandScopeType.CHAT
    assert [c["command"] for c in commands.params["commands"]] == ["menu", "schedule", "invite", "help", "cancel"]

    # a second /start finds the same account
    mark = telegram.mark()
    await telegram.send_text(tutor, "/start")
    again = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark)
    assert "С возвращением" in again.text

    session = await bot.app.bot_data["repitbot"].sessions.get(tutor.id)  # type: ignore[union-attr]
    api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
    invite = await api.post(session, "/api/v1/users/invites", {"role": "student"})
    code = invite["code"]

    student = new_user(telegram, "Petya", language_code="en")
    await telegram.send_text(student, f"/start {code}")
    joined = await telegram.wait_for("sendMessage", chat_id=student.id)
    assert "joined your tutor as a student" in joined.text  # English for an English Telegram client
    assert joined.button("Homework")
    students = await api.get(session, "/api/v1/users/students")
    assert [s["full_name"] for s in students["items"]] == ["Petya"]

    # the same code again is spent
    stranger = new_user(telegram, "Someone")
    await telegram.send_text(stranger, f"/start {code}")
    refused = await telegram.wait_for("sendMessage", chat_id=stranger.id)
    assert "недействительна" in refused.text


async def test_a_button_before_start_asks_to_start(telegram: FakeTelegram, bot: BotRunner) -> None:
    nobody = new_user(telegram, "Nobody", language_code="en")
    await telegram.send_text(nobody, "hello")
    hint = await telegram.wait_for("sendMessage", chat_id=nobody.id)
    assert "/start" in hint.text
