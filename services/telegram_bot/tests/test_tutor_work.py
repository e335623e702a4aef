"""The tutor's work through the bot: invites (a link and a QR code), homework assigned and graded,
payments and balances, a document shared as a material, the month report (the real bot, the fake
Bot API, the real fleet). The student's side is played through the API as the student."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.telegram_bot import images
from services.telegram_bot.api import UserSession
from services.telegram_bot.context import Bot
from services.telegram_bot.handlers.tutor_work import parse_day, parse_rubles
from services.telegram_bot.tests.conftest import BotRunner, new_user
from shared.testing.events import eventually
from shared.testing.fake_telegram import Call, FakeTelegram, FakeUser
from shared.testing.fleet import TestFleet

LINK = re.compile(r"https://t\.me/repitbot_test_bot\?start=([A-Za-z0-9_-]+)")


def repit(bot: BotRunner) -> Bot:
    assert bot.app is not None
    return bot.app.bot_data["repitbot"]  # type: ignore[no-any-return]


async def session_of(bot: BotRunner, user: FakeUser) -> UserSession:
    session = await repit(bot).sessions.get(user.id)
    assert session is not None
    return session


async def started(telegram: FakeTelegram, user: FakeUser, text: str = "/start") -> Call:
    mark = telegram.mark()
    await telegram.send_text(user, text)
    return await telegram.wait_for("sendMessage", chat_id=user.id, after=mark)


async def tutor_and_student(telegram: FakeTelegram, bot: BotRunner) -> tuple[FakeUser, FakeUser]:
    tutor, student = new_user(telegram, "Irina", "en"), new_user(telegram, "Petya", "en")
    await started(telegram, tutor)
    invite = await repit(bot).api.post(await session_of(bot, tutor), "/api/v1/users/invites", {"role": "student"})
    await started(telegram, student, f"/start {invite['code']}")
    return tutor, student


def has(callback_data: str) -> Any:
    """A ``where=`` for the bot's message that carries this button."""
    return lambda call: any(button.get("callback_data") == callback_data for button in call.buttons)


async def step(
    telegram: FakeTelegram, user: FakeUser, action: Any, *args: Any, where: Any = None, method: str = "sendMessage"
) -> Call:
    """Do one thing as the user (press, type, send) and wait for the bot's next answer of ``method``."""
    mark = telegram.mark()
    await action(user, *args)
    return await telegram.wait_for(method, chat_id=user.id, after=mark, where=where)


async def test_the_tutor_invites_with_a_link_and_a_qr_code(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor = new_user(telegram, "Irina", "ru")
    await started(telegram, tutor)

    choose = await step(telegram, tutor, telegram.send_text, "/invite")
    mark = telegram.mark()
    await telegram.press(tutor, choose, "invite:student")
    text = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark, where=lambda c: "t.me" in c.text)
    qr = await telegram.wait_for("sendPhoto", chat_id=tutor.id, after=mark)
    match = LINK.search(text.text)
    assert match is not None, text.text  # the bot's own name from getMe, not user-service's setting
    link = match.group(0)
    assert qr.files["photo"].startswith(b"\x89PNG\r\n\x1a\n")
    assert qr.files["photo"] == images.invite_qr_png(link)  # the QR code is of this very link
    assert link in qr.text

    student = new_user(telegram, "Petya", "en")
    joined = await started(telegram, student, f"/start {match.group(1)}")
    assert "joined your tutor as a student" in joined.text

    # a parent of that student, chosen with a button
    menu = await step(telegram, tutor, telegram.send_text, "/menu")
    choose = await step(telegram, tutor, telegram.press, menu, "invite:new")
    which = await step(telegram, tutor, telegram.press, choose, "Родителя")
    invite = await step(telegram, tutor, telegram.press, which, "Petya", where=lambda c: "t.me" in c.text)
    assert "Petya" in invite.text
    parent_code = LINK.search(invite.text)
    assert parent_code is not None
    parent = new_user(telegram, "Maria", "en")
    assert "joined as a parent" in (await started(telegram, parent, f"/start {parent_code.group(1)}")).text


async def test_the_tutor_assigns_homework_and_grades_a_submission(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    menu = await step(telegram, tutor, telegram.send_text, "/menu")
    homework_menu = await step(telegram, tutor, telegram.press, menu, "hw:list")
    assert "Waiting for review: 0" in homework_menu.text
    pick = await step(telegram, tutor, telegram.press, homework_menu, "Assign")
    ask_title = await step(telegram, tutor, telegram.press, pick, "Petya")
    assert "Petya" in ask_title.text
    ask_due = await step(telegram, tutor, telegram.send_text, "Exercises 5-7")
    retry = await step(telegram, tutor, telegram.send_text, "someday")  # not a date: asked again
    assert "DD.MM" in retry.text
    due_button = retry.buttons[2]  # the third day from today
    ask_description = await step(telegram, tutor, telegram.press, ask_due, due_button["callback_data"])
    assert "No description" in ask_description.buttons[0]["text"]
    assigned = await step(telegram, tutor, telegram.send_text, "Page 42, all of it")
    assert "“Exercises 5-7” is assigned to Petya" in assigned.text

    # the student hands it in through the API: a text and a file
    api, me = repit(bot).api, await session_of(bot, student)
    (homework,) = (await api.get(me, "/api/v1/homework"))["items"]
    assert (homework["title"], homework["description"]) == ("Exercises 5-7", "Page 42, all of it")
    due_day = datetime.fromisoformat(homework["due_at"]).astimezone(ZoneInfo(me.timezone)).date()
    assert due_day.strftime("%d.%m") in due_button["text"]
    answer_file = await api.call(
        me,
        "POST",
        "/api/v1/materials",
        files={"file": ("answers.txt", b"5) x = 42\n6) y = 7\n", "text/plain")},
        data={"title": "answers", "homework_id": homework["id"]},
    )
    await api.post(
        me,
        f"/api/v1/homework/{homework['id']}/submissions",
        {"text": "Done, see the file", "material_ids": [answer_file["id"]]},
        key=api.new_key(),
    )

    # the tutor opens it: the file as a document, then the card with the grades (notifications about the
    # hand-in may arrive in between: each answer is picked by what it is)
    homework_menu = await step(telegram, tutor, telegram.press, menu, "hw:list", where=has("hw:submitted"))
    assert "Waiting for review: 1" in homework_menu.text
    opener = f"hw:open:{homework['id']}"
    to_review = await step(telegram, tutor, telegram.press, homework_menu, "hw:submitted", where=has(opener))
    mark = telegram.mark()
    await telegram.press(tutor, to_review, opener)
    document = await telegram.wait_for("sendDocument", chat_id=tutor.id, after=mark)
    grade_5 = f"hw:grade:{homework['id']}:5"
    card = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark, where=has(grade_5))
    assert document.files["document"] == b"5) x = 42\n6) y = 7\n"
    assert "Done, see the file" in card.text
    ask_comment = await step(telegram, tutor, telegram.press, card, grade_5, where=has("flow:tw_review:skip"))
    graded = await step(telegram, tutor, telegram.press, ask_comment, "No comment", where=lambda c: "graded" in c.text)
    assert "graded 5" in graded.text

    seen = await api.get(me, f"/api/v1/homework/{homework['id']}")
    assert (seen["status"], seen["grade"]) == ("graded", 5)


async def test_the_tutor_records_a_payment_and_sees_the_balance(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    menu = await step(telegram, tutor, telegram.send_text, "/menu")
    payments = await step(telegram, tutor, telegram.press, menu, "pay:menu")
    pick = await step(telegram, tutor, telegram.press, payments, "Record a payment")
    await step(telegram, tutor, telegram.press, pick, "Petya")
    wrong = await step(telegram, tutor, telegram.send_text, "a lot")
    assert "1500.50" in wrong.text  # asked again, with an example
    method = await step(telegram, tutor, telegram.send_text, "1500.50")
    recorded = await step(telegram, tutor, telegram.press, method, "Cash", where=lambda c: "recorded" in c.text)
    assert "1\u00a0500,50\u00a0₽ from Petya is recorded (💵 Cash)" in recorded.text

    balance = await repit(bot).api.get(
        await session_of(bot, tutor), f"/api/v1/payments/balances/{(await session_of(bot, student)).user_id}"
    )
    assert (balance["balance"], balance["currency"]) == (150050, "RUB")

    balances = await step(telegram, tutor, telegram.press, recorded, "pay:balances", where=has("pay:new"))
    assert "Petya: balance 1\u00a0500,50\u00a0₽" in balances.text
    assert "Nobody owes anything" in balances.text
    students = await step(telegram, tutor, telegram.press, menu, "students:list", where=has("invite:student"))
    assert "Your students (1)" in students.text and "Petya: balance 1\u00a0500,50\u00a0₽" in students.text


async def test_a_document_sent_by_the_tutor_becomes_a_shared_material(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    content = b"%PDF-1.4\n% algebra notes\n1 0 obj << >> endobj\n%%EOF\n"
    uploaded = await step(
        telegram, tutor, telegram.send_document, "notes.pdf", content, "application/pdf", "Algebra notes"
    )
    assert "“Algebra notes” is uploaded" in uploaded.text
    shared = await step(
        telegram, tutor, telegram.press, uploaded, "All my students", where=lambda c: "shared" in c.text
    )
    assert "shared with all your students" in shared.text

    api, me = repit(bot).api, await session_of(bot, student)
    (material,) = [m for m in (await api.get(me, "/api/v1/materials"))["items"] if m["title"] == "Algebra notes"]
    assert await api.call(me, "GET", f"/api/v1/materials/{material['id']}/download") == content

    # the tutor's materials: listed, and shared again from there with one student
    menu = await step(telegram, tutor, telegram.send_text, "/menu")
    materials = await step(telegram, tutor, telegram.press, menu, "mat:list", where=lambda c: "materials" in c.text)
    assert "• Algebra notes — all students" in materials.text
    again = await step(telegram, tutor, telegram.press, materials, f"mat:share:{material['id']}")
    pick = await step(telegram, tutor, telegram.press, again, "Choose a student")
    one = await step(telegram, tutor, telegram.press, pick, "Petya", where=lambda c: "shared with Petya" in c.text)
    assert "“Algebra notes” is shared with Petya" in one.text

    # a document sent while a flow waits for typed input is the flow's, not a new material
    menu = await step(telegram, tutor, telegram.send_text, "/menu")
    payments = await step(telegram, tutor, telegram.press, menu, "pay:menu")
    pick = await step(telegram, tutor, telegram.press, payments, "Record a payment")
    await step(telegram, tutor, telegram.press, pick, "Petya")
    again = await step(telegram, tutor, telegram.send_document, "other.pdf", content)
    assert "I did not get the amount" in again.text
    tutor_view = await api.get(await session_of(bot, tutor), "/api/v1/materials")
    assert [m["title"] for m in tutor_view["items"]] == ["Algebra notes"]


async def test_the_month_report_is_text_and_a_chart(fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    api, mine = repit(bot).api, await session_of(bot, tutor)
    student_id = (await session_of(bot, student)).user_id
    lesson = await api.post(
        mine,
        "/api/v1/lessons",
        {
            "student_id": student_id,
            "starts_at": (datetime.now(UTC) - timedelta(minutes=70)).isoformat(),
            "duration_minutes": 60,
            "subject": "Algebra",
            "price": 200000,
        },
    )
    await api.post(mine, f"/api/v1/lessons/{lesson['id']}/complete", {"grade": 5})

    async def charged() -> bool:  # the charge reaches analytics through events
        summary = await api.get(mine, f"/api/v1/analytics/tutors/{mine.user_id}/summary")
        return bool(summary["income"])

    await eventually(charged, timeout=20, what="analytics knows the lesson's charge")

    menu = await step(telegram, tutor, telegram.send_text, "/menu")
    mark = telegram.mark()
    await telegram.press(tutor, menu, "report:month")
    report = await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark, where=lambda c: "Report" in c.text)
    chart = await telegram.wait_for("sendPhoto", chat_id=tutor.id, after=mark)
    assert "Income: 2\u00a0000\u00a0₽" in report.text
    assert "Active students: 1" in report.text
    assert chart.files["photo"].startswith(b"\x89PNG\r\n\x1a\n")
    assert "Income per day" in chart.text


def test_amounts_and_dates_as_typed() -> None:
    assert parse_rubles("1500") == 150000
    assert parse_rubles("1500.50") == 150050
    assert parse_rubles("1 500,5") == 150050
    assert parse_rubles("0") is None
    assert parse_rubles("-5") is None
    assert parse_rubles("15.555") is None
    today = datetime(2025, 12, 20).date()
    assert parse_day("25.12", today) == datetime(2025, 12, 25).date()
    assert parse_day("5.01", today) == datetime(2026, 1, 5).date()  # past this year: next year's
    assert parse_day("31.02", today) is None
    assert parse_day("tomorrow", today) is None


async def test_the_tutor_returns_a_submission_for_rework_with_a_comment(telegram: FakeTelegram, bot: BotRunner) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    api, mine, theirs = repit(bot).api, await session_of(bot, tutor), await session_of(bot, student)
    due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    homework = await api.post(mine, "/api/v1/homework", {"student_id": theirs.user_id, "title": "Essay", "due_at": due})
    await api.post(theirs, f"/api/v1/homework/{homework['id']}/submissions", {"text": "Short"})

    to_review = await step(telegram, tutor, telegram.send_text, "/menu")
    to_review = await step(telegram, tutor, telegram.press, to_review, "hw:list", where=has("hw:submitted"))
    opener = f"hw:open:{homework['id']}"
    to_review = await step(telegram, tutor, telegram.press, to_review, "hw:submitted", where=has(opener))
    card = await step(telegram, tutor, telegram.press, to_review, opener, where=has(f"hw:return:{homework['id']}"))
    assert "(no text)" not in card.text and "Short" in card.text
    await step(telegram, tutor, telegram.press, card, f"hw:return:{homework['id']}", where=has("flow:tw_review:skip"))
    returned = await step(
        telegram, tutor, telegram.send_text, "Twice as long, please", where=lambda c: "returned" in c.text
    )
    assert "“Essay” is returned for rework" in returned.text

    seen = await api.get(theirs, f"/api/v1/homework/{homework['id']}")
    assert (seen["status"], seen["comment"]) == ("returned", "Twice as long, please")
