"""The student's screens end to end (the real bot, the fake Bot API, the real fleet): homework handed in
by replying to its card with a document, balance, progress, a material as a file, English for English
users. The tutor acts through the API with their own session, as the tutor's screens would."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.telegram_bot.api import MicroserviceClient, UserSession
from services.telegram_bot.handlers.common import money
from services.telegram_bot.tests.conftest import BotRunner, new_user
from shared.testing.fake_telegram import Call, FakeTelegram, FakeUser


@dataclass
class Member:
    """A Telegram user signed in through the bot, with their session and their welcome (main menu)."""

    user: FakeUser
    session: UserSession
    welcome: Call

    @property
    def id(self) -> str:
        return self.session.user_id


def api_of(bot: BotRunner) -> MicroserviceClient:
    assert bot.app is not None
    return bot.app.bot_data["repitbot"].api  # type: ignore[no-any-return]


async def sign_in(telegram: FakeTelegram, bot: BotRunner, user: FakeUser, code: str | None = None) -> Member:
    mark = telegram.mark()
    await telegram.send_text(user, f"/start {code}" if code else "/start")
    welcome = await telegram.wait_for("sendMessage", chat_id=user.id, after=mark)
    assert bot.app is not None
    session = await bot.app.bot_data["repitbot"].sessions.get(user.id)
    assert session is not None, welcome.text
    return Member(user, session, welcome)


async def join(
    telegram: FakeTelegram,
    bot: BotRunner,
    tutor: Member,
    name: str,
    *,
    role: str = "student",
    language_code: str = "ru",
    student: Member | None = None,
) -> Member:
    body: dict[str, Any] = {"role": role} | ({"student_id": student.id} if student else {})
    invite = await api_of(bot).post(tutor.session, "/api/v1/users/invites", body)
    member = await sign_in(telegram, bot, new_user(telegram, name, language_code), invite["code"])
    assert member.session.role == role
    return member


async def tutor_and_student(
    telegram: FakeTelegram, bot: BotRunner, *, student_language: str = "ru"
) -> tuple[Member, Member]:
    tutor = await sign_in(telegram, bot, new_user(telegram, "Irina"))
    student = await join(telegram, bot, tutor, "Petya", language_code=student_language)
    return tutor, student


async def press(telegram: FakeTelegram, member: Member, on: Call, button: str, expect: str) -> Call:
    """Press a button and wait for the bot's message (or document) in that chat containing ``expect``
    (notifications from the fleet may arrive in between)."""
    mark = telegram.mark()
    await telegram.press(member.user, on, button)
    return await telegram.wait_for(
        ("sendMessage", "sendDocument"), chat_id=member.user.id, after=mark, where=lambda c: expect in c.text
    )


async def says(telegram: FakeTelegram, member: Member, expect: str, after: int) -> Call:
    return await telegram.wait_for("sendMessage", chat_id=member.user.id, after=after, where=lambda c: expect in c.text)


async def assign(bot: BotRunner, tutor: Member, student: Member, title: str) -> dict[str, Any]:
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = {"student_id": student.id, "title": title, "due_at": due}
    homework: dict[str, Any] = await api_of(bot).post(tutor.session, "/api/v1/homework", body)
    return homework


async def test_a_student_submits_homework_as_a_document_by_replying(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    homework = await assign(bot, tutor, student, "Essay on Pushkin")

    mark = telegram.mark()
    await telegram.press(student.user, student.welcome, "hw:list")
    card = await telegram.wait_for(
        "sendMessage",
        chat_id=student.user.id,
        after=mark,
        where=lambda c: "Essay on Pushkin" in c.text and "Срок:" in c.text,
    )
    assert "задано" in card.text and "ответьте на это сообщение" in card.text

    work = b"%PDF-1.4\n" + uuid.uuid4().bytes + b"\n%%EOF\n"
    mark = telegram.mark()
    await telegram.send_document(student.user, "essay.pdf", work, mime_type="application/pdf", reply_to=card)
    await says(telegram, student, "сдана", mark)

    api = api_of(bot)
    assert (await api.get(tutor.session, f"/api/v1/homework/{homework['id']}"))["status"] == "submitted"
    [submission] = (await api.get(tutor.session, f"/api/v1/homework/{homework['id']}/submissions"))["items"]
    [material_id] = submission["material_ids"]
    assert await api.get(tutor.session, f"/api/v1/materials/{material_id}/download") == work

    # a reply with nothing to hand in is asked for again, not submitted
    mark = telegram.mark()
    await telegram.send_text(student.user, "   ", reply_to=card)
    await says(telegram, student, "Пришлите", mark)


async def test_the_student_sees_balance_progress_and_gets_a_material_file(
    telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    api = api_of(bot)
    top_up = {"student_id": student.id, "amount": 300_000, "currency": "RUB", "method": "cash"}
    await api.post(tutor.session, "/api/v1/payments/top-ups", top_up, key=api.new_key())
    bonus = {"amount": 150, "reason": "a great start"}
    await api.post(tutor.session, f"/api/v1/students/{student.id}/xp-adjustments", bonus, key=api.new_key())
    notes = b"%PDF-1.4\n" + uuid.uuid4().bytes + b"\n%%EOF\n"
    material = await api.call(
        tutor.session,
        "POST",
        "/api/v1/materials",
        files={"file": ("notes.pdf", notes, "application/pdf")},
        data={"title": "Notes on verbs"},
    )
    await api.post(tutor.session, f"/api/v1/materials/{material['id']}/share", {"student_ids": [student.id]})

    balance = await press(telegram, student, student.welcome, "balance:me", "Баланс:")
    assert money(300_000, "RUB") in balance.text, balance.text

    progress = await press(telegram, student, student.welcome, "progress:me", "XP")
    assert "Уровень 2" in progress.text, progress.text
    # 150 XP: level 2 starts at 100, level 3 at 282 → 50 of 182 → 2 of 10 cells
    assert "▰▰▱▱▱▱▱▱▱▱ 150/282 XP" in progress.text
    assert "Petya" in progress.text  # the weekly board's neighbours: only the student here

    listing = await press(telegram, student, student.welcome, "mat:list", "Материалы")
    sent = await press(telegram, student, listing, "Notes on verbs", "Notes on verbs")
    assert sent.method == "sendDocument"
    assert sent.files["document"] == notes


async def test_a_user_with_language_en_gets_english(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot, student_language="en")
    await assign(bot, tutor, student, "Irregular verbs")
    cyrillic = re.compile("[а-яА-ЯёЁ]")

    balance = await press(telegram, student, student.welcome, "balance:me", "💰")
    assert "Balance" in balance.text and not cyrillic.search(balance.text), balance.text

    mark = telegram.mark()
    await telegram.press(student.user, student.welcome, "hw:list")
    card = await telegram.wait_for(
        "sendMessage",
        chat_id=student.user.id,
        after=mark,
        where=lambda c: "Irregular verbs" in c.text and "Due:" in c.text,
    )
    assert "Due:" in card.text and "reply to this message" in card.text
    assert not cyrillic.search(card.text), card.text

    tips = await press(telegram, student, student.welcome, "tips:me", "💡")
    assert "tip" in tips.text.lower() and not cyrillic.search(tips.text), tips.text
