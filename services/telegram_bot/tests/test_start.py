"""Signing in through /start: a new tutor, a student joining by the tutor's invite link, a parent,
per-role command menus, and a bad invite (the real bot, the fake Bot API, the real fleet)."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import asdict

from redis.asyncio import Redis
from telegram.constants import BotCommandScopeType

from services.telegram_bot.api import SessionStore, session_seal
from services.telegram_bot.tests.conftest import BotRunner, new_user
from shared.testing.fake_telegram import Call, FakeTelegram, FakeUser
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


async def test_help_and_command_menus_per_role(fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner) -> None:
    async def help_of(user: FakeUser) -> Call:
        mark = telegram.mark()
        await telegram.send_text(user, "/help")
        return await telegram.wait_for("sendMessage", chat_id=user.id, after=mark)

    def commands_of(user: FakeUser) -> Awaitable[Call]:
        return telegram.wait_for("setMyCommands", where=lambda c: c.params["scope"].get("chat_id") == user.id)

    tutor = new_user(telegram, "Irina", language_code="ru")
    await telegram.send_text(tutor, "/start")
    await telegram.wait_for("sendMessage", chat_id=tutor.id)
    tutor_help = await help_of(tutor)
    assert "/invite — пригласить ученика" in tutor_help.text and "/homework" not in tutor_help.text
    assert tutor_help.button("Меню")["callback_data"] == "menu:main"
    mark = telegram.mark()
    await telegram.press(tutor, tutor_help, "Меню")
    menu = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark)
    assert menu.button("Назначить урок")  # Menu under the help leads to the role's main menu

    session = await bot.app.bot_data["repitbot"].sessions.get(tutor.id)  # type: ignore[union-attr]
    api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
    student = new_user(telegram, "Petya", language_code="en")
    await telegram.send_text(
        student, f"/start {(await api.post(session, '/api/v1/users/invites', {'role': 'student'}))['code']}"
    )
    await telegram.wait_for("sendMessage", chat_id=student.id)
    student_commands = await commands_of(student)
    assert student_commands.params["scope"]["type"] == BotCommandScopeType.CHAT
    assert [(c["command"], c["description"]) for c in student_commands.params["commands"]] == [
        ("menu", "Main menu"),
        ("schedule", "Schedule"),
        ("homework", "Homework"),
        ("progress", "My progress"),
        ("help", "Help"),
        ("cancel", "Cancel the current action"),
    ]
    student_help = await help_of(student)
    assert "/homework — my homework" in student_help.text and "/invite" not in student_help.text
    assert student_help.button("Menu")["callback_data"] == "menu:main"

    (petya,) = (await api.get(session, "/api/v1/users/students"))["items"]
    invite = await api.post(session, "/api/v1/users/invites", {"role": "parent", "student_id": petya["id"]})
    parent = new_user(telegram, "Maria", language_code="en")
    await telegram.send_text(parent, f"/start {invite['code']}")
    await telegram.wait_for("sendMessage", chat_id=parent.id)
    parent_commands = await commands_of(parent)
    assert parent_commands.params["scope"]["type"] == BotCommandScopeType.CHAT
    assert [(c["command"], c["description"]) for c in parent_commands.params["commands"]] == [
        ("menu", "Main menu"),
        ("children", "My children"),
        ("help", "Help"),
        ("cancel", "Cancel the current action"),
    ]
    parent_help = await help_of(parent)
    assert "/children — my children" in parent_help.text and "/homework" not in parent_help.text
    mark = telegram.mark()
    await telegram.press(parent, parent_help, "Menu")
    parent_menu = await telegram.wait_for("sendMessage", chat_id=parent.id, after=mark)
    assert parent_menu.button("Children") and "Main menu" in parent_menu.text


async def test_a_session_is_sealed_in_redis(fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner) -> None:
    """Redis holds each user's tokens (a refresh token lives 30 days): sealed with a key derived from the
    bot's client secret, a copy of Redis gives none away. A session sealed with another key (the secret
    rotated) reads as none (the user presses /start again); one stored before sealing is still read, and
    sealed when next saved."""
    tutor = new_user(telegram, "Vera")
    await telegram.send_text(tutor, "/start")
    await telegram.wait_for("sendMessage", chat_id=tutor.id)
    sessions = bot.app.bot_data["repitbot"].sessions  # type: ignore[union-attr]
    session = await sessions.get(tutor.id)
    assert session is not None and session.refresh_token

    redis = Redis.from_url(bot.settings.redis_url, decode_responses=True)
    try:
        key = f"bot:session:{tutor.id}"
        stored = await redis.get(key)
        assert session.refresh_token not in stored and session.access_token not in stored
        assert session.user_id not in stored  # nothing of it is readable

        elsewhere = SessionStore(redis, session_seal("another-secret"))
        assert await elsewhere.get(tutor.id) is None

        await redis.set(key, json.dumps(asdict(session)))  # as the bot stored it before sealing
        assert await sessions.get(tutor.id) == session
        await sessions.save(session)
        assert not (await redis.get(key)).startswith("{")
        assert await sessions.get(tutor.id) == session
    finally:
        await redis.aclose()
