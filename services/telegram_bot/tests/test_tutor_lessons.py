"""Lessons from the tutor's side, by buttons: scheduling (with bad input, Cancel and a bot restart in
the middle), opening and completing a lesson, and the week view in each user's own time zone (the real
bot, the fake Bot API, the real fleet)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from services.telegram_bot.api import UserSession
from services.telegram_bot.handlers.tutor_lessons import parse_date, parse_time
from services.telegram_bot.tests.conftest import BotRunner, bot_settings, new_user
from services.telegram_bot.tests.test_fallback import ClockedRunner, ShiftedClock
from shared.testing.events import eventually
from shared.testing.fake_telegram import Call, FakeTelegram, FakeUser
from shared.testing.fleet import TestFleet
from shared.testing.tcp_proxy import TcpProxy

MOSCOW = ZoneInfo("Europe/Moscow")


async def said(telegram: FakeTelegram, user: FakeUser, action: Callable[[], Awaitable[Any]], expect: str) -> Call:
    """The bot's answer to ``user`` after ``action`` (a press or a typed message): the next message whose
    text or a button holds ``expect`` (a notification from the fleet may arrive in between)."""

    def answers(call: Call) -> bool:
        return expect in call.text or any(expect in b["text"] or expect == b.get("callback_data") for b in call.buttons)

    mark = telegram.mark()
    await action()
    return await telegram.wait_for("sendMessage", chat_id=user.id, after=mark, where=answers)


async def tutor_with_student(
    telegram: FakeTelegram, bot: BotRunner, student_lang: str = "ru"
) -> tuple[FakeUser, FakeUser, Call, UserSession]:
    """A new tutor (their main menu) with one student who joined by the invite link."""
    tutor = new_user(telegram, "Irina")
    menu = await said(telegram, tutor, lambda: telegram.send_text(tutor, "/start"), "lesson:new")
    repitbot = bot.app.bot_data["repitbot"]  # type: ignore[union-attr]
    session = await repitbot.sessions.get(tutor.id)
    invite = await repitbot.api.post(session, "/api/v1/users/invites", {"role": "student"})
    student = new_user(telegram, "Petya", language_code=student_lang)
    await said(telegram, student, lambda: telegram.send_text(student, f"/start {invite['code']}"), "sched:week")
    return tutor, student, menu, session


async def tutors_lessons(bot: BotRunner, session: UserSession) -> list[dict[str, Any]]:
    api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
    now = datetime.now(UTC)
    page = await api.get(
        session,
        "/api/v1/lessons",
        **{"from": (now - timedelta(days=2)).isoformat(), "to": (now + timedelta(days=9)).isoformat()},
    )
    return list(page["items"])


async def test_a_tutor_schedules_a_lesson_through_the_buttons_and_completes_it(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, _, menu, session = await tutor_with_student(telegram, bot)

    ask = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "lesson:new"), "Кому")
    assert "Кому" in ask.text
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Petya"), "ДД.ММ")
    assert "Petya" in ask.text and ask.button("Завтра") and ask.button("Отмена")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Завтра"), "ЧЧ:ММ")
    assert "ЧЧ:ММ" in ask.text
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "18:30"), "60 мин")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "60 мин"), "Предмет")
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Математика"), "Проверьте урок")
    assert "Математика" in ask.text and "18:30" in ask.text and "Petya" in ask.text
    done = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Один раз"), "Урок назначен")
    assert "Урок назначен" in done.text

    [lesson] = await tutors_lessons(bot, session)
    tomorrow = datetime.now(MOSCOW).date() + timedelta(days=1)
    starts = datetime.fromisoformat(lesson["starts_at"]).astimezone(MOSCOW)
    assert (starts.date(), starts.strftime("%H:%M")) == (tomorrow, "18:30")  # the tutor's zone (Moscow by default)
    assert (lesson["subject"], lesson["duration_minutes"], lesson["status"]) == ("Математика", 60, "scheduled")

    card = await said(telegram, tutor, lambda: telegram.press(tutor, done, f"lesson:open:{lesson['id']}"), "Статус")
    assert "Математика" in card.text and "запланирован" in card.text
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Провести"), "пришёл?")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Пришёл"), "Оценка за урок")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "flow:lesson_done:grade:5"), "усвоена тема")
    ask = await said(
        telegram, tutor, lambda: telegram.press(tutor, ask, "flow:lesson_done:mastery:learned"), "Заметки к уроку"
    )
    summary = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Разобрали дроби"), "Урок проведён")
    assert "Урок проведён" in summary.text and "Оценка: 5" in summary.text and "Разобрали дроби" in summary.text

    api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
    completed = await api.get(session, f"/api/v1/lessons/{lesson['id']}")
    assert (completed["status"], completed["attendance"], completed["grade"]) == ("completed", "present", 5)
    assert (completed["mastery"], completed["notes"]) == ("learned", "Разобрали дроби")

    # the same card's buttons now refuse to change a completed lesson
    refused = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Провести"), "нельзя изменить")
    assert "уже" in refused.text


async def test_bad_input_reprompts_and_cancel_leaves_the_flow(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, _, menu, session = await tutor_with_student(telegram, bot)
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "lesson:new"), "Кому")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Petya"), "ДД.ММ")
    again = await said(telegram, tutor, lambda: telegram.send_text(tutor, "32.13"), "Не понял дату")
    assert "Не понял дату" in again.text and again.button("Завтра")  # the same question, asked again
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, again, "Завтра"), "ЧЧ:ММ")
    again = await said(telegram, tutor, lambda: telegram.send_text(tutor, "25:99"), "Не понял время")
    assert "Не понял время" in again.text and again.button("Отмена")

    cancelled = await said(telegram, tutor, lambda: telegram.press(tutor, again, "Отмена"), "отменено")
    assert "отменено" in cancelled.text
    # the flow is over: a time typed now is not taken, and a button of the old flow has expired
    hint = await said(telegram, tutor, lambda: telegram.send_text(tutor, "18:00"), "Не понял")
    assert "Не понял" in hint.text and "ЧЧ:ММ" not in hint.text
    expired = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Отмена"), "Нечего отменять")
    assert "Нечего отменять" in expired.text
    assert await tutors_lessons(bot, session) == []


async def test_a_bot_restart_mid_conversation_carries_on(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, _, menu, session = await tutor_with_student(telegram, bot)
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "lesson:new"), "Кому")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Petya"), "ДД.ММ")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Завтра"), "ЧЧ:ММ")

    await bot.restart()  # nothing of the conversation is held in the process

    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "09:00"), "90 мин")
    assert ask.button("90 мин")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "90 мин"), "Предмет")
    await bot.restart()
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Физика"), "Проверьте урок")
    done = await said(
        telegram, tutor, lambda: telegram.press(tutor, ask, "flow:lesson_new:confirm:w4"), "Назначено уроков"
    )
    assert "Назначено уроков: 4" in done.text

    lessons = await tutors_lessons(bot, session)  # the next 9 days hold the first two of the weekly four
    assert [x["subject"] for x in lessons] == ["Физика", "Физика"]
    assert {datetime.fromisoformat(x["starts_at"]).astimezone(MOSCOW).strftime("%H:%M") for x in lessons} == {"09:00"}
    assert all(x["duration_minutes"] == 90 for x in lessons)


async def test_week_view_shows_the_lesson_in_the_users_time_zone(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, student, _, session = await tutor_with_student(telegram, bot, student_lang="en")
    repitbot = bot.app.bot_data["repitbot"]  # type: ignore[union-attr]
    await repitbot.api.call(session, "PATCH", "/api/v1/users/me", json_body={"timezone": "Asia/Vladivostok"})
    menu = await said(
        telegram, tutor, lambda: telegram.send_text(tutor, "/start"), "lesson:new"
    )  # the session learns the zone

    vladivostok = ZoneInfo("Asia/Vladivostok")
    day = datetime.now(vladivostok).date() + timedelta(days=2)
    starts = datetime(day.year, day.month, day.day, 5, 30, tzinfo=vladivostok)  # 22:30 in Moscow, the day before
    students = await repitbot.api.get(session, "/api/v1/users/students")
    student_id = students["items"][0]["id"]
    body = {"student_id": student_id, "starts_at": starts.isoformat(), "duration_minutes": 45, "subject": "Химия"}
    lesson = await repitbot.api.post(session, "/api/v1/lessons", body)

    week = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "sched:week"), "Ближайшие 7 дней")
    assert f"{day:%d.%m}" in week.text and "05:30–06:15 · Petya · Химия" in week.text
    assert week.button("05:30 Petya")["callback_data"] == f"lesson:open:{lesson['id']}"

    # the student (Moscow, English) sees the same lesson at their own clock time, read-only
    student_menu = await said(telegram, student, lambda: telegram.send_text(student, "/menu"), "sched:week")
    mine = await said(telegram, student, lambda: telegram.press(student, student_menu, "sched:week"), "The next 7 days")
    moscow = starts.astimezone(MOSCOW)
    assert f"{moscow:%d.%m}" in mine.text and "22:30–23:15 · Химия · 🕒 scheduled" in mine.text
    assert moscow.date() == day - timedelta(days=1)
    assert not [b for b in mine.buttons if b["callback_data"].startswith("lesson:")]


def test_typed_dates_and_times() -> None:
    today = datetime(2025, 12, 30).date()
    assert parse_date("05.01", today) == datetime(2026, 1, 5).date()  # the nearest 5 January
    assert parse_date("28.12", today) == datetime(2025, 12, 28).date()
    assert parse_date("29.02.2028", today) == datetime(2028, 2, 29).date()
    assert parse_date("32.13", today) is None and parse_date("завтра", today) is None
    assert parse_time("9:05") is not None and parse_time("23:59") is not None
    assert parse_time("25:99") is None and parse_time("24:00") is None and parse_time("1830") is None


# --- cancel, reschedule, missed, an overlap -----------------------------------------------------------


async def lesson_at(bot: BotRunner, session: UserSession, starts: datetime, subject: str = "Физика") -> dict[str, Any]:
    """A lesson of the tutor's only student, scheduled through the API."""
    api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
    [student] = (await api.get(session, "/api/v1/users/students"))["items"]
    body = {"student_id": student["id"], "starts_at": starts.isoformat(), "duration_minutes": 60, "subject": subject}
    return await api.post(session, "/api/v1/lessons", body)  # type: ignore[no-any-return]


async def test_cancel_excused_is_free_and_chargeable_is_charged_once(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, _, menu, session = await tutor_with_student(telegram, bot)
    api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
    [student] = (await api.get(session, "/api/v1/users/students"))["items"]
    sid = student["id"]
    await api.call(
        session, "PUT", f"/api/v1/payments/prices/students/{sid}", json_body={"amount": 100_000, "currency": "RUB"}
    )
    top_up = {"student_id": sid, "amount": 1_000_000, "currency": "RUB", "method": "cash"}
    await api.post(session, "/api/v1/payments/top-ups", top_up, key=api.new_key())
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    charged = await lesson_at(bot, session, now + timedelta(days=2), "Химия")
    excused = await lesson_at(bot, session, now + timedelta(days=3), "Физика")

    async def covered_until() -> datetime | None:
        balance = await api.get(session, f"/api/v1/payments/balances/{sid}")
        return datetime.fromisoformat(balance["covered_until"]) if balance["covered_until"] else None

    async def covers(lesson: dict[str, Any] | None) -> bool:
        """payment-service's runway ends at this lesson: it has seen the schedule change."""
        expected = datetime.fromisoformat(lesson["starts_at"]) if lesson else None
        return await covered_until() == expected

    await eventually(lambda: covers(excused), what="both lessons known to payment-service")

    # excused, with a typed reason: free
    card = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "sched:week"), "Ближайшие 7 дней")
    card = await said(telegram, tutor, lambda: telegram.press(tutor, card, f"lesson:open:{excused['id']}"), "Статус")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Отменить урок"), "Уважительная")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Уважительная"), "Причина отмены")
    assert ask.button("Пропустить") and ask.button("Отмена")
    done = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Болеет"), "отменён")
    assert "без оплаты" in done.text and "Petya" in done.text
    cancelled = await api.get(session, f"/api/v1/lessons/{excused['id']}")
    assert (cancelled["status"], cancelled["chargeable"], cancelled["cancel_reason"]) == ("cancelled", False, "Болеет")
    await eventually(lambda: covers(charged), what="the excused cancellation seen by payment-service")
    balance = await api.get(session, f"/api/v1/payments/balances/{sid}")
    assert balance["balance"] == 1_000_000  # nothing charged for it

    # chargeable, reason skipped: charged the lesson's price, once
    card = await said(telegram, tutor, lambda: telegram.press(tutor, done, "sched:week"), "Ближайшие 7 дней")
    card = await said(telegram, tutor, lambda: telegram.press(tutor, card, f"lesson:open:{charged['id']}"), "Статус")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Отменить урок"), "Платная")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Платная"), "Причина отмены")
    done = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Пропустить"), "отменён")
    assert "отмена платная" in done.text
    cancelled = await api.get(session, f"/api/v1/lessons/{charged['id']}")
    assert (cancelled["status"], cancelled["chargeable"], cancelled["cancel_reason"]) == ("cancelled", True, None)
    await eventually(lambda: covers(None), what="the chargeable cancellation seen by payment-service")
    statement = (await api.get(session, f"/api/v1/payments/statements/{sid}"))["items"]
    charges = [e for e in statement if e["kind"] != "top_up"]
    assert [(e["kind"], e["amount"], e["lesson_id"]) for e in charges] == [
        ("late_cancel_charge", -100_000, charged["id"])
    ]
    assert (await api.get(session, f"/api/v1/payments/balances/{sid}"))["balance"] == 900_000

    # the old buttons do not cancel (or charge) again
    refused = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Отменить урок"), "нельзя изменить")
    assert "отменён" in refused.text
    expired = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Пропустить"), "устарел")
    assert "устарел" in expired.text


async def test_reschedule_in_the_tutors_zone_and_mark_missed(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, _, _, session = await tutor_with_student(telegram, bot)
    api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
    await api.call(session, "PATCH", "/api/v1/users/me", json_body={"timezone": "Asia/Vladivostok"})
    menu = await said(telegram, tutor, lambda: telegram.send_text(tutor, "/start"), "lesson:new")
    vladivostok = ZoneInfo("Asia/Vladivostok")
    today = datetime.now(vladivostok).date()
    first = await lesson_at(bot, session, datetime(today.year, today.month, today.day, 8, 0, tzinfo=vladivostok))
    tomorrow = today + timedelta(days=1)
    second = await lesson_at(
        bot, session, datetime(tomorrow.year, tomorrow.month, tomorrow.day, 12, 0, tzinfo=vladivostok), "Химия"
    )

    week = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "sched:week"), "Ближайшие 7 дней")
    card = await said(telegram, tutor, lambda: telegram.press(tutor, week, f"lesson:open:{first['id']}"), "Статус")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Перенести"), "На какой день")
    target = today + timedelta(days=3)
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, f"{target:%d.%m}"), "ЧЧ:ММ")
    again = await said(telegram, tutor, lambda: telegram.send_text(tutor, "7 вечера"), "Не понял время")
    assert again.button("Отмена")
    moved = await said(telegram, tutor, lambda: telegram.send_text(tutor, "10:15"), "перенесён")
    assert f"{target:%d.%m} 10:15" in moved.text and "Petya" in moved.text  # the tutor's own clock
    now = await api.get(session, f"/api/v1/lessons/{first['id']}")
    starts = datetime.fromisoformat(now["starts_at"]).astimezone(vladivostok)
    assert (starts.date(), starts.strftime("%H:%M"), now["status"]) == (target, "10:15", "scheduled")
    assert now["duration_minutes"] == 60

    card = await said(telegram, tutor, lambda: telegram.press(tutor, moved, "sched:week"), "Ближайшие 7 дней")
    card = await said(telegram, tutor, lambda: telegram.press(tutor, card, f"lesson:open:{second['id']}"), "Статус")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Пропуск"), "как пропуск?")
    done = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Да, пропуск"), "отмечен как пропуск")
    assert "Petya" in done.text
    assert (await api.get(session, f"/api/v1/lessons/{second['id']}"))["status"] == "missed"


async def test_an_overlap_names_the_lesson_in_the_way_and_another_time_succeeds(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, _, menu, session = await tutor_with_student(telegram, bot)
    tomorrow = datetime.now(MOSCOW).date() + timedelta(days=1)
    taken = await lesson_at(bot, session, datetime(tomorrow.year, tomorrow.month, tomorrow.day, 18, 0, tzinfo=MOSCOW))

    ask = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "lesson:new"), "Кому")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Petya"), "ДД.ММ")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Завтра"), "ЧЧ:ММ")
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "18:30"), "60 мин")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "60 мин"), "Предмет")
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Математика"), "Проверьте урок")
    refused = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Один раз"), "занято")
    assert f"{tomorrow:%d.%m} 18:00–19:00" in refused.text and "Физика" in refused.text and "Petya" in refused.text
    assert "ЧЧ:ММ" in refused.text and refused.button("Отмена")  # asked for another time

    # duration and subject are kept: straight back to the check
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "19:00"), "Проверьте урок")
    assert "19:00" in ask.text and "Математика" in ask.text
    done = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Один раз"), "Урок назначен")
    assert "19:00" in done.text
    lessons = sorted(await tutors_lessons(bot, session), key=lambda x: x["starts_at"])
    assert [x["id"] for x in lessons][0] == taken["id"]
    assert [
        (x["subject"], datetime.fromisoformat(x["starts_at"]).astimezone(MOSCOW).strftime("%H:%M")) for x in lessons
    ] == [
        ("Физика", "18:00"),
        ("Математика", "19:00"),
    ]


@pytest.fixture
def gateway_proxy(fleet: TestFleet) -> Iterator[TcpProxy]:
    url = urlsplit(fleet.url("api-gateway"))
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 80) as proxy:
        yield proxy


async def test_try_again_after_the_fleet_was_unreachable_cancels_once(
    fleet: TestFleet, telegram: FakeTelegram, gateway_proxy: TcpProxy, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    settings = bot_settings(fleet, telegram, tmp_path)
    bot = ClockedRunner(
        settings.model_copy(update={"gateway_url": gateway_proxy.rewrite_url(fleet.url("api-gateway"))}), clock
    )
    await bot.start()
    try:
        tutor, _, menu, session = await tutor_with_student(telegram, bot)
        lesson = await lesson_at(bot, session, datetime.now(UTC).replace(microsecond=0) + timedelta(days=1))
        week = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "sched:week"), "Ближайшие 7 дней")
        card = await said(telegram, tutor, lambda: telegram.press(tutor, week, f"lesson:open:{lesson['id']}"), "Статус")
        ask = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Отменить урок"), "Уважительная")
        ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Уважительная"), "Причина отмены")

        gateway_proxy.cut()
        retry = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Болеет"), "Повторить")
        assert "ответы сохранены" in retry.text and retry.button("Отмена")
        again = await said(telegram, tutor, lambda: telegram.press(tutor, retry, "Повторить"), "Повторить")
        assert "недоступен" in again.text

        gateway_proxy.restore()
        clock.advance(60)  # past the client's breaker reset
        done = await said(telegram, tutor, lambda: telegram.press(tutor, again, "Повторить"), "отменён")
        assert "без оплаты" in done.text
        api = bot.app.bot_data["repitbot"].api  # type: ignore[union-attr]
        cancelled = await api.get(session, f"/api/v1/lessons/{lesson['id']}")
        assert (cancelled["status"], cancelled["chargeable"], cancelled["cancel_reason"]) == (
            "cancelled",
            False,
            "Болеет",
        )
        # the flow is over: the old button sends nothing again
        expired = await said(telegram, tutor, lambda: telegram.press(tutor, again, "Повторить"), "устарел")
        assert "устарел" in expired.text
    finally:
        await bot.stop()
