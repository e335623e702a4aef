"""The whole journey in one go, every step through the bot's buttons (the real python-telegram-bot, the
fake Bot API, the real fleet): the tutor signs up and invites a student by the link, the student joins,
the tutor schedules a lesson and completes it with a 5, the student is told of their XP and
achievement, the tutor assigns homework, the student hands it in as a document by replying, and the
tutor grades it."""

from __future__ import annotations

import re
import uuid

from services.telegram_bot.tests.conftest import BotRunner, new_user
from services.telegram_bot.tests.test_tutor_lessons import said
from shared.testing.fake_telegram import Call, FakeTelegram
from shared.testing.fleet import TestFleet

LINK = re.compile(r"https://t\.me/\w+\?start=([A-Za-z0-9_-]+)")


def has(callback_data: str):  # type: ignore[no-untyped-def]
    return lambda call: any(b.get("callback_data", "").startswith(callback_data) for b in call.buttons)


async def test_invite_join_schedule_complete_xp_homework_by_document_and_grade(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor = new_user(telegram, "Irina")
    menu = await said(telegram, tutor, lambda: telegram.send_text(tutor, "/start"), "lesson:new")

    # the invite: a link and its QR code; the student joins by it
    choose = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "invite:new"), "invite:student")
    mark = telegram.mark()
    await telegram.press(tutor, choose, "invite:student")
    link = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark, where=lambda c: "t.me" in c.text)
    await telegram.wait_for("sendPhoto", chat_id=tutor.id, after=mark)
    code = LINK.search(link.text)
    assert code is not None, link.text
    student = new_user(telegram, "Petya")
    welcome = await said(telegram, student, lambda: telegram.send_text(student, f"/start {code.group(1)}"), "hw:list")
    assert "как ученик" in welcome.text

    # a lesson tomorrow through the buttons, then completed with a 5
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "lesson:new"), "Кому")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Petya"), "ДД.ММ")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Завтра"), "ЧЧ:ММ")
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "17:00"), "60 мин")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "60 мин"), "Предмет")
    ask = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Алгебра"), "Проверьте урок")
    done = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Один раз"), "Урок назначен")
    opener = next(b["callback_data"] for b in done.buttons if b["callback_data"].startswith("lesson:open:"))
    card = await said(telegram, tutor, lambda: telegram.press(tutor, done, opener), "Статус")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, card, "Провести"), "пришёл?")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "Пришёл"), "Оценка за урок")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "flow:lesson_done:grade:5"), "усвоена тема")
    ask = await said(telegram, tutor, lambda: telegram.press(tutor, ask, "flow:lesson_done:mastery:learned"), "Заметки")
    await said(telegram, tutor, lambda: telegram.send_text(tutor, "Квадратные уравнения"), "Урок проведён")

    # the game layer tells the student, through notification-service and the bot (200 XP: level 2)
    level = await telegram.wait_for("sendMessage", chat_id=student.id, where=lambda c: "Новый уровень" in c.text)
    assert "200 XP" in level.text
    achievement = await telegram.wait_for("sendMessage", chat_id=student.id, where=lambda c: "достижение" in c.text)
    assert "Первый урок" in achievement.text or "First" in achievement.text

    # homework: assigned by buttons, handed in as a document by replying to its card, graded 5
    homework_menu = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "hw:list"), "Задать задание")
    pick = await said(telegram, tutor, lambda: telegram.press(tutor, homework_menu, "Задать задание"), "Petya")
    await said(telegram, tutor, lambda: telegram.press(tutor, pick, "Petya"), "Petya")
    due = await said(telegram, tutor, lambda: telegram.send_text(tutor, "Упражнения 1-5"), "Срок сдачи")
    day = due.buttons[1]["callback_data"]
    describe = await said(telegram, tutor, lambda: telegram.press(tutor, due, day), "Без описания")
    await said(telegram, tutor, lambda: telegram.press(tutor, describe, "Без описания"), "задано")

    mark = telegram.mark()
    await telegram.press(student, welcome, "hw:list")
    homework_card = await telegram.wait_for(
        "sendMessage", chat_id=student.id, after=mark, where=lambda c: "Упражнения 1-5" in c.text and "Срок" in c.text
    )
    work = b"%PDF-1.4\n" + uuid.uuid4().bytes + b"\n%%EOF\n"
    mark = telegram.mark()
    await telegram.send_document(student, "work.pdf", work, "application/pdf", reply_to=homework_card)
    await telegram.wait_for("sendMessage", chat_id=student.id, after=mark, where=lambda c: "сдана" in c.text)

    review = await said(telegram, tutor, lambda: telegram.press(tutor, menu, "hw:list"), "На проверке (1)")
    mark = telegram.mark()
    await telegram.press(tutor, review, "На проверке (1)")
    listing = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark, where=has("hw:open:"))
    homework_opener = next(b["callback_data"] for b in listing.buttons if b["callback_data"].startswith("hw:open:"))
    mark = telegram.mark()
    await telegram.press(tutor, listing, homework_opener)
    document = await telegram.wait_for("sendDocument", chat_id=tutor.id, after=mark)
    assert document.files["document"] == work  # the tutor gets exactly what the student sent
    grade_card: Call = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark, where=has("hw:grade:"))
    grade_5 = next(b["callback_data"] for b in grade_card.buttons if b["callback_data"].endswith(":5"))
    comment = await said(telegram, tutor, lambda: telegram.press(tutor, grade_card, grade_5), "Без комментария")
    graded = await said(
        telegram, tutor, lambda: telegram.press(tutor, comment, "Без комментария"), "«Упражнения 1-5»: оценка 5"
    )
    assert "оценка 5" in graded.text

    # the student hears about the grade, and the API agrees
    told = await telegram.wait_for(
        "sendMessage", chat_id=student.id, where=lambda c: "«Упражнения 1-5» проверено: оценка 5" in c.text
    )
    assert told is not None
    repitbot = bot.app.bot_data["repitbot"]  # type: ignore[union-attr]
    me = await repitbot.sessions.get(student.id)
    [homework] = (await repitbot.api.get(me, "/api/v1/homework"))["items"]
    assert (homework["status"], homework["grade"]) == ("graded", 5)
    profile = await repitbot.api.get(me, "/api/v1/students/me/profile")
    assert profile["level"] >= 2 and "first_lesson" in {a["code"] for a in profile["achievements"]}
