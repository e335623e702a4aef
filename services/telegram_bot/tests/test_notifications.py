"""Notifications: notification.requested on the fleet's exchange → a message in the user's chat →
notification.delivered / failed on the bus; 429s waited out, blocked users marked and skipped; the catalogue
covers every template notification-service emits (the real bot, the fake Bot API, the real fleet)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.telegram_bot import notifications
from services.telegram_bot.api import UserSession
from services.telegram_bot.context import Bot
from services.telegram_bot.i18n import LANGUAGES
from services.telegram_bot.messages import MESSAGES
from services.telegram_bot.notifications import render
from services.telegram_bot.tests.conftest import BotRunner, new_user
from shared.events.catalogue import NotificationRequested
from shared.events.envelope import Envelope
from shared.testing.events import EventRecorder, eventually, publish
from shared.testing.fake_telegram import FakeTelegram, FakeUser
from shared.testing.fleet import TestFleet

ROOT = Path(__file__).resolve().parents[3]


# --- helpers other bot tests reuse ---------------------------------------------------------------


@dataclass
class Pair:
    tutor: FakeUser
    student: FakeUser
    tutor_session: UserSession
    student_session: UserSession


def services(bot: BotRunner) -> Bot:
    assert bot.app is not None
    return bot.app.bot_data["repitbot"]  # type: ignore[no-any-return]


async def tutor_and_student(telegram: FakeTelegram, bot: BotRunner, student_lang: str = "en") -> Pair:
    """A tutor and their student, both signed in through /start in the bot."""
    repitbot = services(bot)
    tutor = new_user(telegram, "Irina", language_code="en")
    mark = telegram.mark()
    await telegram.send_text(tutor, "/start")
    await telegram.wait_for("sendMessage", chat_id=tutor.id, after=mark)
    tutor_session = await repitbot.sessions.get(tutor.id)
    assert tutor_session is not None
    invite = await repitbot.api.post(tutor_session, "/api/v1/users/invites", {"role": "student"})
    student = new_user(telegram, "Petya", language_code=student_lang)
    mark = telegram.mark()
    await telegram.send_text(student, f"/start {invite['code']}")
    await telegram.wait_for("sendMessage", chat_id=student.id, after=mark)
    student_session = await repitbot.sessions.get(student.id)
    assert student_session is not None
    return Pair(tutor, student, tutor_session, student_session)


async def consuming(bot: BotRunner) -> None:
    """The bot's queue is bound once its bus is connected: publish only after that."""
    assert bot.app is not None
    notifier = bot.app.bot_data[notifications.BUS_KEY]
    await eventually(lambda: notifier.bus.is_connected, what="the bot's bus connected")


def requested(user_id: str, template: str, params: dict[str, Any], **fields: Any) -> Envelope:
    payload = NotificationRequested(
        notification_id=uuid.uuid4(),
        user_id=uuid.UUID(user_id),
        template=template,
        params=params,
        dedup_key=fields.pop("dedup_key", f"test:{uuid.uuid4()}"),
        **fields,
    )
    return Envelope.wrap(payload, producer="notification-service", correlation_id=str(uuid.uuid4()))


def homework_params(title: str) -> dict[str, Any]:
    due = datetime.now(UTC) + timedelta(days=3)
    return {"homework_id": str(uuid.uuid4()), "title": title, "due_at": due.isoformat(), "language": "en"}


def _for(notification: Envelope) -> Any:
    return lambda e: e.payload["notification_id"] == notification.payload["notification_id"]


# --- the catalogue -------------------------------------------------------------------------------


def templates_notification_service_emits() -> set[str]:
    """Every template name in notification-service's code (``template="..."``, its ``TEMPLATE``/``TEMPLATES``
    constants, the alert pair) and in CONTRACTS.md's table: there is no single constant listing them."""
    names: set[str] = set()
    for path in (ROOT / "services" / "notification_service").rglob("*.py"):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        source = path.read_text()
        names |= set(re.findall(r'\btemplate="([a-z_]+)"', source))
        names |= set(re.findall(r'^TEMPLATE = "([a-z_]+)"', source, re.M))
        for block in re.findall(r"^TEMPLATES = \{([^}]*)\}", source, re.M):
            names |= set(re.findall(r':\s*"([a-z_]+)"', block))
        names |= set(re.findall(r'"(alert_[a-z]+)"', source))
    contracts = (ROOT / "docs" / "CONTRACTS.md").read_text()
    section = contracts.split("| template |", 1)[1].split("\n\n", 1)[0]
    for row in section.splitlines()[2:]:
        names |= set(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return names


def test_every_template_notification_service_emits_has_a_text_in_both_languages() -> None:
    names = templates_notification_service_emits()
    assert {"lesson_reminder", "level_up", "achievement_unlocked", "weekly_summary", "alert_firing"} <= names
    for name in sorted(names):
        assert f"notify_{name}" in MESSAGES, name
        for lang in LANGUAGES:
            for recipient in ({}, {"for_parent": True}, {"for_tutor": True}):
                params = {**recipient, "starts_at_local": "2026-11-27T10:00:00+03:00", "level": 2}
                text = render(name, params, lang)
                assert text.strip() and "{" not in text, (name, lang)


def test_a_cancellation_tells_the_tutor_whose_lesson_and_the_payer_whether_it_is_charged() -> None:
    params = {
        "subject": "Maths",
        "topic": None,
        "starts_at": "2026-11-27T07:00:00+00:00",
        "starts_at_local": "2026-11-27T10:00:00+03:00",
        "student_name": "Petya",
        "cancelled_by_role": "student",
        "reason": "ill",
        "chargeable": True,
    }
    tutor = params | {"for_tutor": True}
    assert render("lesson_cancelled", tutor, "en") == (
        "❌ Petya: the lesson Maths (27.11 10:00) is cancelled by the student."
        " A late cancellation: the lesson is chargeable. Reason: ill"
    )
    assert render("lesson_cancelled", tutor, "ru") == (
        "❌ Petya: урок Maths (27.11 10:00) отменён учеником. Поздняя отмена — урок оплачивается. Причина: ill"
    )
    parent = params | {"for_parent": True}
    assert render("lesson_cancelled", parent, "en").startswith("❌ Your child's lesson Maths (27.11 10:00)")
    assert "chargeable" in render("lesson_cancelled", parent, "en")
    free = render("lesson_cancelled", tutor | {"chargeable": False, "reason": None}, "en")
    assert free == "❌ Petya: the lesson Maths (27.11 10:00) is cancelled by the student."


def test_a_firing_alert_tells_the_admin_what_to_do() -> None:
    params = {
        "status": "firing",
        "alertname": "ServiceDown",
        "severity": "critical",
        "service": "payment-service",
        "summary": "payment-service is down",
        "description": "no answer for 2 minutes",
        "runbook": "FINAL_MICROSERVICES_DOCUMENTATION.md#runbook-servicedown",
    }
    assert render("alert_firing", params, "en") == (
        "🔥 Alert ServiceDown (critical), payment-service: payment-service is down\nno answer for 2 minutes\n"
        "📖 What to do: FINAL_MICROSERVICES_DOCUMENTATION.md#runbook-servicedown"
    )
    assert render("alert_firing", params, "ru").endswith(
        "📖 Что делать: FINAL_MICROSERVICES_DOCUMENTATION.md#runbook-servicedown"
    )
    assert "📖" not in render("alert_firing", params | {"runbook": None}, "en")  # a rule without one
    assert "📖" not in render("alert_resolved", params | {"status": "resolved"}, "en")


def test_a_reminder_renders_in_the_recipients_zone_with_rsvp_buttons_for_the_student_only() -> None:
    params = {
        "lesson_id": "L1",
        "subject": "Maths",
        "topic": None,
        "starts_at": "2026-11-27T07:00:00+00:00",
        "starts_at_local": "2026-11-27T10:00:00+03:00",
        "minutes_before": 60,
        "for_parent": False,
    }
    assert render("lesson_reminder", params, "en") == "⏰ Reminder: Maths at 27.11 10:00 (in 1 h)."
    assert render("lesson_reminder", params, "ru").startswith("⏰ Напоминание: Maths — 27.11 10:00")
    event = NotificationRequested(
        notification_id=uuid.uuid4(), user_id=uuid.uuid4(), template="lesson_reminder", params=params
    )
    markup = notifications.buttons_of(event, "en")
    assert markup is not None
    assert [(b.text, b.callback_data) for b in markup.inline_keyboard[0]] == [
        ("✅ I'll come", "rsvp:yes:L1"),
        ("🚫 I can't come", "rsvp:no:L1"),
    ]
    parent = event.model_copy(update={"params": params | {"for_parent": True}})
    assert notifications.buttons_of(parent, "en") is None


# --- end to end ----------------------------------------------------------------------------------


async def test_a_notification_requested_reaches_the_chat_and_is_reported_delivered(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    pair = await tutor_and_student(telegram, bot)
    await consuming(bot)
    async with EventRecorder(fleet.rabbit_url) as events:
        # no chat_id: the bot finds the chat from the user id
        notification = requested(pair.student_session.user_id, "homework_assigned", homework_params("Essay 7"))
        await publish(fleet.rabbit_url, notification)
        sent = await telegram.wait_for("sendMessage", chat_id=pair.student.id, where=lambda c: "Essay 7" in c.text)
        assert sent.text.startswith("📚 New homework: “Essay 7”, due ")
        delivered = await events.wait_for("notification.delivered", _for(notification))
        assert delivered.payload["chat_id"] == pair.student.id
        assert delivered.payload["telegram_message_id"] == sent.result["message_id"]
        assert delivered.causation_id == str(notification.event_id)

        # the same envelope again (a redelivery): reported again, not sent again
        await publish(fleet.rabbit_url, notification)
        await events.wait_for_count("notification.delivered", 2, _for(notification))
        assert len([c for c in telegram.sent("sendMessage", pair.student.id) if "Essay 7" in c.text]) == 1


async def test_a_completed_lesson_tells_the_student_their_xp_and_achievement(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    pair = await tutor_and_student(telegram, bot)
    await consuming(bot)
    api = services(bot).api
    starts = datetime.now(UTC) - timedelta(hours=2)  # a lesson already held, recorded now
    lesson = await api.post(
        pair.tutor_session,
        "/api/v1/lessons",
        {
            "student_id": pair.student_session.user_id,
            "starts_at": starts.isoformat(),
            "duration_minutes": 60,
            "subject": "Maths",
        },
    )
    mark = telegram.mark()
    await api.post(pair.tutor_session, f"/api/v1/lessons/{lesson['id']}/complete", {"grade": 5})

    # grade 5: 200 XP → level 2, and the first-lesson achievement (student-service → notification-service → bot)
    level = await telegram.wait_for(
        "sendMessage", chat_id=pair.student.id, after=mark, where=lambda c: c.text.startswith("🎉")
    )
    assert level.text == "🎉 Level 2! You have 200 XP."
    achievement = await telegram.wait_for(
        "sendMessage", chat_id=pair.student.id, after=mark, where=lambda c: "First lesson (common)" in c.text
    )
    assert achievement.text == "🏆 Achievement unlocked: First lesson (common)."


async def test_telegram_429_retry_after_is_honoured(fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner) -> None:
    pair = await tutor_and_student(telegram, bot)
    await consuming(bot)
    telegram.fail_next("sendMessage", chat_id=pair.student.id, status=429, retry_after=1)
    async with EventRecorder(fleet.rabbit_url) as events:
        notification = requested(
            pair.student_session.user_id, "homework_assigned", homework_params("Essay 429"), chat_id=pair.student.id
        )
        await publish(fleet.rabbit_url, notification)
        await events.wait_for("notification.delivered", _for(notification))
    attempts = [c for c in telegram.calls if c.method == "sendMessage" and "Essay 429" in c.text]
    assert [c.status for c in attempts] == [429, 200]  # refused once, then sent once
    assert not events.of_type("notification.failed", _for(notification))


async def test_a_blocked_user_is_marked_and_not_retried(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    pair = await tutor_and_student(telegram, bot)
    await consuming(bot)
    telegram.block(pair.student.id)
    async with EventRecorder(fleet.rabbit_url) as events:
        first = requested(pair.student_session.user_id, "homework_assigned", homework_params("Blocked 1"))
        await publish(fleet.rabbit_url, first)
        failed = await events.wait_for("notification.failed", _for(first))
        assert (failed.payload["reason"], failed.payload["permanent"]) == ("blocked", True)
        assert await services(bot).sessions.is_blocked(pair.student.id)

        second = requested(pair.student_session.user_id, "homework_assigned", homework_params("Blocked 2"))
        await publish(fleet.rabbit_url, second)
        assert (await events.wait_for("notification.failed", _for(second))).payload["reason"] == "blocked"
        tries = [c for c in telegram.calls if c.method == "sendMessage" and c.chat_id == pair.student.id]
        assert [(c.status, c.text) for c in tries if "Blocked" in c.text] == [(403, tries[-1].text)]
        assert "Blocked 1" in tries[-1].text  # exactly one attempt, for the first; the second was skipped

        # they unblock the bot and press /start: notifications reach them again
        telegram.blocked.discard(pair.student.id)
        mark = telegram.mark()
        await telegram.send_text(pair.student, "/start")
        await telegram.wait_for("sendMessage", chat_id=pair.student.id, after=mark)
        third = requested(pair.student_session.user_id, "homework_assigned", homework_params("Unblocked"))
        await publish(fleet.rabbit_url, third)
        await events.wait_for("notification.delivered", _for(third))
