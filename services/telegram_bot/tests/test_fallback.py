"""The offline fallback through the real screens, with the gateway cut off by a TCP proxy: the student's
schedule answers from the cache marked "data as of"; a homework handed in by replying with a document
and a lesson completed by the tutor's buttons are queued (each user told so); once the gateway is back
the replay loop sends them with their Idempotency-Keys and tells the users: each arrives exactly once (one
submission with the document's bytes, one completion, one charge in payment-service).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from telegram.ext import Application

from services.telegram_bot.app import build_application
from services.telegram_bot.offline import OfflineStore
from services.telegram_bot.tests.conftest import BotRunner, bot_settings, new_user
from services.telegram_bot.tests.test_student import Member, assign, join, sign_in
from shared.testing.events import eventually
from shared.testing.fake_telegram import Call, FakeTelegram
from shared.testing.fleet import TestFleet
from shared.testing.tcp_proxy import TcpProxy

PRICE = 150_000  # 1 500 RUB, the lesson's own price


class ShiftedClock:
    """The real time plus a shift the test moves forward (the client's breaker reads this clock)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.shift)

    def monotonic(self) -> float:
        return time.monotonic() + self.shift

    def advance(self, seconds: float) -> None:
        self.shift += seconds


class ClockedRunner(BotRunner):
    def __init__(self, settings: object, clock: ShiftedClock) -> None:
        super().__init__(settings)  # type: ignore[arg-type]
        self.clock = clock

    async def start(self) -> Application:  # type: ignore[type-arg]
        app = build_application(self.settings, clock=self.clock)
        await app.initialize()
        assert app.post_init is not None
        await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1, drop_pending_updates=False)
        self.app = app
        return app


@pytest.fixture
def gateway_proxy(fleet: TestFleet) -> AsyncIterator[TcpProxy]:
    url = urlsplit(fleet.url("api-gateway"))
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 80) as proxy:
        yield proxy  # type: ignore[misc]


async def said(telegram: FakeTelegram, member: Member, expect: str, after: int) -> Call:
    return await telegram.wait_for("sendMessage", chat_id=member.user.id, after=after, where=lambda c: expect in c.text)


async def pressed(telegram: FakeTelegram, member: Member, on: Call, button: str, expect: str) -> Call:
    mark = telegram.mark()
    await telegram.press(member.user, on, button)
    return await said(telegram, member, expect, mark)


async def test_the_real_screens_queue_while_the_gateway_is_cut_and_replay_each_write_once(
    fleet: TestFleet, telegram: FakeTelegram, gateway_proxy: TcpProxy, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    settings = bot_settings(fleet, telegram, tmp_path, replay_interval_seconds=0.2)
    # the bot reaches the gateway through the proxy (and so do this test's own API calls)
    settings = settings.model_copy(update={"gateway_url": gateway_proxy.rewrite_url(fleet.url("api-gateway"))})
    bot = ClockedRunner(settings, clock)
    await bot.start()
    try:
        tutor = await sign_in(telegram, bot, new_user(telegram, "Irina", "en"))
        student = await join(telegram, bot, tutor, "Petya", language_code="en")
        assert bot.app is not None
        repitbot = bot.app.bot_data["repitbot"]
        api = repitbot.api
        starts = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
        lesson = await api.post(
            tutor.session,
            "/api/v1/lessons",
            {"student_id": student.id, "starts_at": starts.isoformat(), "subject": "Algebra", "price": PRICE},
        )
        homework = await assign(bot, tutor, student, "Exercise 12")

        # while the gateway answers: the student's week (remembered), the homework card; the tutor opens
        # the lesson and starts completing it
        week = await pressed(telegram, student, student.welcome, "sched:week", "Algebra")
        assert "data as of" not in week.text
        mark = telegram.mark()
        await telegram.press(student.user, student.welcome, "hw:list")
        card = await telegram.wait_for(
            "sendMessage",
            chat_id=student.user.id,
            after=mark,
            where=lambda c: "Exercise 12" in c.text and "Due:" in c.text,
        )
        schedule = await pressed(telegram, tutor, tutor.welcome, "sched:week", "Algebra")
        opened = await pressed(telegram, tutor, schedule, f"lesson:open:{lesson['id']}", "Algebra")
        ask = await pressed(telegram, tutor, opened, f"lesson:done:{lesson['id']}", "Attendance?")

        gateway_proxy.cut()

        # the schedule from the cache, marked with the time it was fetched
        stale = await pressed(telegram, student, student.welcome, "sched:week", "data as of")
        assert stale.text.startswith("⚠️ The service is unavailable; data as of ") and "Algebra" in stale.text

        # the homework handed in by replying with a document: queued, the student told
        work = b"%PDF-1.4\n" + uuid.uuid4().bytes + b"\n%%EOF\n"
        mark = telegram.mark()
        await telegram.send_document(student.user, "answers.pdf", work, mime_type="application/pdf", reply_to=card)
        saved = await said(telegram, student, "I saved", mark)
        assert saved.text.startswith("The service is unavailable right now. I saved “Exercise 12”"), saved.text

        # the lesson completed through the buttons (the flow's steps live in Redis): queued, the tutor told
        ask = await pressed(telegram, tutor, ask, "flow:lesson_done:attendance:present", "Grade")
        ask = await pressed(telegram, tutor, ask, "flow:lesson_done:grade:5", "topic")
        ask = await pressed(telegram, tutor, ask, "flow:lesson_done:mastery:learned", "notes")
        told = await pressed(telegram, tutor, ask, "flow:lesson_done:notes:skip", "I saved")
        assert "completing the lesson" in told.text and "Petya" in told.text, told.text

        assert repitbot.offline is not None
        queued = [w.kind for w in await repitbot.offline.pending(student.user.id)]
        assert queued == ["homework.file", "homework.submit"]
        assert [w.kind for w in await repitbot.offline.pending(tutor.user.id)] == ["lesson.complete"]

        gateway_proxy.restore()
        clock.advance(60)  # past the client's breaker reset: the next call probes the gateway again
        await said(telegram, student, "✅ Sent: “Exercise 12”.", mark)
        sent_lesson = await said(telegram, tutor, "✅ Sent: “completing the lesson", mark)
        assert "Petya" in sent_lesson.text
        assert await repitbot.offline.pending() == []

        # exactly once: one submission holding the document, one completion, one charge
        submissions = (await api.get(tutor.session, f"/api/v1/homework/{homework['id']}/submissions"))["items"]
        assert len(submissions) == 1
        [material_id] = submissions[0]["material_ids"]
        assert await api.get(tutor.session, f"/api/v1/materials/{material_id}/download") == work
        completed = await api.get(tutor.session, f"/api/v1/lessons/{lesson['id']}")
        assert (completed["status"], completed["attendance"], completed["grade"]) == ("completed", "present", 5)

        async def charged() -> bool:
            balance = await api.get(tutor.session, f"/api/v1/payments/balances/{student.id}")
            return bool(balance["balance"] == -PRICE)

        await eventually(charged, what="payment-service charged the completed lesson")
        statement = (await api.get(tutor.session, f"/api/v1/payments/statements/{student.id}"))["items"]
        charges = [e for e in statement if e["lesson_id"] == lesson["id"]]
        assert [(e["amount"], e["balance_after"]) for e in charges] == [(-PRICE, -PRICE)]

        # each user heard "sent" once (the upload is a step of the submission: not announced on its own)
        for member in (student, tutor):
            notices = [c for c in telegram.sent("sendMessage", member.user.id) if "✅ Sent:" in c.text]
            assert len(notices) == 1, [c.text for c in notices]
    finally:
        await bot.stop()


async def test_queueing_a_key_already_queued_returns_that_write(tmp_path: Path) -> None:
    """A write re-queued with its Idempotency-Key (e.g. after a crash before the flow ended) is not
    queued twice."""
    store = OfflineStore(tmp_path / "offline.sqlite3")
    await store.open()
    body: dict[str, Any] = {"attendance": "present"}
    key = str(uuid.uuid4())
    first = await store.enqueue(
        1, "lesson.complete", "POST", "/x", json_body=body, description="a", idempotency_key=key
    )
    again = await store.enqueue(
        1, "lesson.complete", "POST", "/x", json_body=body, description="a", idempotency_key=key
    )
    assert again.id == first.id and [w.id for w in await store.pending(1)] == [first.id]
    with pytest.raises(ValueError, match="another user"):
        await store.enqueue(2, "lesson.complete", "POST", "/x", json_body=body, description="a", idempotency_key=key)
