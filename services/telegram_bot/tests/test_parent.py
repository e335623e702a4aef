"""The parent's screens end to end: the children list and a child's balance, schedule and homework."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.telegram_bot.handlers.common import money
from services.telegram_bot.tests.conftest import BotRunner
from services.telegram_bot.tests.test_student import api_of, assign, join, press, tutor_and_student
from shared.testing.fake_telegram import FakeTelegram


async def test_a_parent_sees_the_childs_balance(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    parent = await join(telegram, bot, tutor, "Maria", role="parent", student=student)
    api = api_of(bot)
    top_up = {"student_id": student.id, "amount": 250_000, "currency": "RUB", "method": "transfer"}
    await api.post(tutor.session, "/api/v1/payments/top-ups", top_up, key=api.new_key())
    await assign(bot, tutor, student, "Fractions")

    children = await press(telegram, parent, parent.welcome, "children:list", "Выберите ребёнка")
    assert [b["text"] for b in children.buttons] == ["Petya"]
    menu = await press(telegram, parent, children, "Petya", "Petya: что показать")

    balance = await press(telegram, parent, menu, "Баланс", "Баланс:")
    assert "Petya" in balance.text and money(250_000, "RUB") in balance.text, balance.text

    homework = await press(telegram, parent, balance, "Домашние задания", "заданий")
    assert "заданий 1" in homework.text and "задано: 1" in homework.text, homework.text

    lesson = {
        "student_id": student.id,
        "starts_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        "duration_minutes": 60,
        "subject": "Algebra",
    }
    await api.post(tutor.session, "/api/v1/lessons", lesson)
    schedule = await press(telegram, parent, homework, "Расписание", "уроки на две недели")
    assert "Algebra" in schedule.text
    rates = await press(telegram, parent, schedule, "Посещаемость", "Посещаемость:")
    assert "Petya" in rates.text
    report = await press(telegram, parent, rates, "Отчёт за месяц", "отчёт за")
    assert "Оплачено: " + money(250_000, "RUB") in report.text, report.text

    # another family's child is not reachable by a forged button
    other_tutor, stranger = await tutor_and_student(telegram, bot)
    forged = balance.buttons[0] | {"callback_data": f"child:bal:{stranger.id}"}
    balance.params["reply_markup"] = {"inline_keyboard": [[forged]]}
    refused = await press(telegram, parent, balance, f"child:bal:{stranger.id}", "Не найдено")
    assert money(250_000, "RUB") not in refused.text
