"""The parent's screens end to end: the children list, a child's balance, schedule, homework and report,
and the weekly summary of each of two children kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.telegram_bot.handlers.common import money
from services.telegram_bot.tests.conftest import BotRunner
from services.telegram_bot.tests.test_student import Member, api_of, assign, join, press, sign_in, tutor_and_student
from shared.testing.events import eventually
from shared.testing.fake_telegram import FakeTelegram

MOSCOW = ZoneInfo("Europe/Moscow")


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

    # (not "Баланс:": the top-up's own notice to the parent says it too, and may come first)
    balance = await press(telegram, parent, menu, "Баланс", "Оплачено уроков вперёд")
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


async def test_a_parent_of_two_children_sees_each_childs_weekly_summary_apart(
    telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, petya = await tutor_and_student(telegram, bot)
    masha = await join(telegram, bot, tutor, "Masha")
    parent = await join(telegram, bot, tutor, "Maria", role="parent", student=petya)
    api = api_of(bot)
    invite = await api.post(tutor.session, "/api/v1/users/invites", {"role": "parent", "student_id": masha.id})
    await sign_in(telegram, bot, parent.user, invite["code"])  # the same parent, a second child

    price = {"amount": 100_000, "currency": "RUB"}
    await api.call(tutor.session, "PUT", f"/api/v1/payments/prices/students/{petya.id}", json_body=price)
    top_up = {"student_id": petya.id, "amount": 500_000, "currency": "RUB", "method": "transfer"}
    await api.post(tutor.session, "/api/v1/payments/top-ups", top_up, key=api.new_key())
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    async def lesson(student: Member, hours_ago: int, subject: str) -> str:
        body = {
            "student_id": student.id,
            "starts_at": (now - timedelta(hours=hours_ago)).isoformat(),
            "duration_minutes": 60,
            "subject": subject,
        }
        return str((await api.post(tutor.session, "/api/v1/lessons", body))["id"])

    algebra = await lesson(petya, 48, "Алгебра")
    await api.post(tutor.session, f"/api/v1/lessons/{algebra}/complete", {"grade": 5, "mastery": "learned"})
    geometry = await lesson(petya, 24, "Геометрия")
    await api.post(tutor.session, f"/api/v1/lessons/{geometry}/missed", {})
    biology = await lesson(masha, 30, "Биология")
    await api.post(tutor.session, f"/api/v1/lessons/{biology}/complete", {"grade": 3})
    fractions = await assign(bot, tutor, petya, "Fractions")
    essay = await assign(bot, tutor, petya, "Essay")
    for homework in (fractions, essay):
        await api.post(petya.session, f"/api/v1/homework/{homework['id']}/submissions", {"text": "done"})
    await api.post(tutor.session, f"/api/v1/homework/{fractions['id']}/grade", {"grade": 4})

    async def charged() -> bool:  # both of Petya's lessons charged by payment-service
        return (await api.get(tutor.session, f"/api/v1/payments/balances/{petya.id}"))["balance"] == 300_000

    await eventually(charged, what="Petya's two lessons charged")

    children = await press(telegram, parent, parent.welcome, "children:list", "Выберите ребёнка")
    assert sorted(b["text"] for b in children.buttons) == ["Masha", "Petya"]

    menu = await press(telegram, parent, children, "Petya", "Petya: что показать")
    week = await press(telegram, parent, menu, "Итоги недели", "итоги недели")
    today = datetime.now(MOSCOW).date()
    assert f"{today - timedelta(days=6):%d.%m}–{today:%d.%m}" in week.text
    assert "Уроки: проведено 1, пропущено 1, отменено 0" in week.text, week.text
    assert "Алгебра: оценка 5, Усвоена" in week.text and "Геометрия: пропуск" in week.text
    assert "Домашние задания: сдано 2, проверено 1" in week.text
    assert f"Fractions: сдано {today:%d.%m}, оценка 4" in week.text
    assert f"Essay: сдано {today:%d.%m}, ждёт проверки" in week.text
    assert (
        f"Оплачено: {money(500_000, 'RUB')}, списано за уроки: {money(200_000, 'RUB')}, "
        f"баланс: {money(300_000, 'RUB')}" in week.text
    )
    assert "Биология" not in week.text and "Masha" not in week.text

    children = await press(telegram, parent, week, "children:list", "Выберите ребёнка")
    menu = await press(telegram, parent, children, "Masha", "Masha: что показать")
    week = await press(telegram, parent, menu, "child:week:" + masha.id, "итоги недели")
    assert "Masha" in week.text and "Биология: оценка 3" in week.text
    assert "Уроки: проведено 1, пропущено 0" in week.text and "Домашние задания: сдано 0, проверено 0" in week.text
    for petyas in ("Алгебра", "Геометрия", "Fractions", "Essay", money(500_000, "RUB")):
        assert petyas not in week.text
