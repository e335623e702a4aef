"""RSVP under a lesson reminder: "I can't come" cancels as the student (chargeable inside the late window)
and the tutor is told once, by notification-service's notice; "I'll come" confirms and tells the tutor
(real bot, fake Bot API, real fleet)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.telegram_bot.tests.conftest import BotRunner
from services.telegram_bot.tests.test_notifications import Pair, consuming, requested, services, tutor_and_student
from shared.testing.events import publish
from shared.testing.fake_telegram import Call, FakeTelegram
from shared.testing.fleet import TestFleet


def _starts(prefix: str) -> Callable[[Call], bool]:
    return lambda call: call.text.startswith(prefix)


async def lesson_in(bot: BotRunner, pair: Pair, hours: float) -> dict[str, Any]:
    starts = datetime.now(UTC) + timedelta(hours=hours)
    return await services(bot).api.post(  # type: ignore[no-any-return]
        pair.tutor_session,
        "/api/v1/lessons",
        {
            "student_id": pair.student_session.user_id,
            "starts_at": starts.isoformat(),
            "duration_minutes": 60,
            "subject": "Physics",
        },
    )


async def reminder(fleet: TestFleet, telegram: FakeTelegram, pair: Pair, lesson: dict[str, Any]) -> Call:
    """A reminder as notification-service sends it (its params; no buttons: the bot adds RSVP)."""
    params = {
        "lesson_id": lesson["id"],
        "student_id": pair.student_session.user_id,
        "subject": lesson["subject"],
        "topic": None,
        "starts_at": lesson["starts_at"],
        "starts_at_local": lesson["starts_at"],
        "minutes_before": 120,
        "for_parent": False,
        "language": "en",
    }
    await publish(fleet.rabbit_url, requested(pair.student_session.user_id, "lesson_reminder", params))
    return await telegram.wait_for("sendMessage", chat_id=pair.student.id, where=lambda c: "Reminder" in c.text)


async def test_cant_come_inside_the_late_window_cancels_as_chargeable_and_the_tutor_is_told_once(
    fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner
) -> None:
    pair = await tutor_and_student(telegram, bot)
    await consuming(bot)
    lesson = await lesson_in(bot, pair, hours=2)
    sent = await reminder(fleet, telegram, pair, lesson)
    assert sent.text.startswith("⏰ Reminder: Physics at ")

    pressed = telegram.mark()
    await telegram.press(pair.student, sent, "I can't come")
    # (other messages may come meanwhile: notification-service's own notices of the same changes)
    told = await telegram.wait_for("sendMessage", chat_id=pair.student.id, after=pressed, where=_starts("The lesson"))
    assert "is cancelled" in told.text and "chargeable" in told.text
    tutor = await telegram.wait_for("sendMessage", chat_id=pair.tutor.id, after=pressed, where=_starts("❌"))
    assert tutor.text.startswith("❌ Petya: the lesson Physics (")
    assert "is cancelled by the student. A late cancellation: the lesson is chargeable." in tutor.text

    now = await services(bot).api.get(pair.tutor_session, f"/api/v1/lessons/{lesson['id']}")
    assert (now["status"], now["chargeable"], now["cancelled_by_role"]) == ("cancelled", True, "student")

    # the button pressed again: nothing left to cancel (and the bot has finished with the first press,
    # which it handled before this one)
    mark = telegram.mark()
    await telegram.press(pair.student, sent, "I can't come")
    await telegram.wait_for(
        "sendMessage", chat_id=pair.student.id, after=mark, where=_starts("This lesson is no longer")
    )
    to_tutor = [c.text for c in telegram.calls[pressed:] if c.method == "sendMessage" and c.chat_id == pair.tutor.id]
    about_it = [text for text in to_tutor if "Physics" in text and "cancel" in text]
    assert about_it == [tutor.text], "one message to the tutor about one cancellation"


async def test_ill_come_confirms_and_tells_the_tutor(fleet: TestFleet, telegram: FakeTelegram, bot: BotRunner) -> None:
    pair = await tutor_and_student(telegram, bot)
    await consuming(bot)
    lesson = await lesson_in(bot, pair, hours=30)
    sent = await reminder(fleet, telegram, pair, lesson)
    mark = telegram.mark()
    await telegram.press(pair.student, sent, "rsvp:yes:" + lesson["id"])
    await telegram.wait_for(
        "sendMessage", chat_id=pair.student.id, after=mark, where=_starts("Great, see you at Physics")
    )
    await telegram.wait_for(
        "sendMessage", chat_id=pair.tutor.id, after=mark, where=_starts("👍 Petya is coming to Physics")
    )
    still = await services(bot).api.get(pair.student_session, f"/api/v1/lessons/{lesson['id']}")
    assert still["status"] == "scheduled"
