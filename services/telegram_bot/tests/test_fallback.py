"""The offline fallback with the gateway cut off by a TCP proxy: a read view answers from the cache with its
"data as of" mark; a homework submission is queued (the student is told), and once the gateway is back the
replay loop sends it with its Idempotency-Key and tells the student: it arrives exactly once.

The student's own screens (schedule, hand-in) belong to handlers/student.py, not committed when this was
written: the test calls the same helpers they use (``read_view``, ``fallback.queue_or_send``) as the student.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from telegram.ext import Application

from services.telegram_bot import fallback
from services.telegram_bot.app import build_application
from services.telegram_bot.handlers.common import Caller, read_view, stale_mark
from services.telegram_bot.tests.conftest import BotRunner, bot_settings
from services.telegram_bot.tests.test_notifications import services, tutor_and_student
from shared.testing.fake_telegram import FakeTelegram
from shared.testing.fleet import TestFleet
from shared.testing.tcp_proxy import TcpProxy


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


async def test_fallback_serves_the_cached_schedule_and_replays_a_queued_submission_once(
    fleet: TestFleet, telegram: FakeTelegram, gateway_proxy: TcpProxy, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    gateway = gateway_proxy.rewrite_url(fleet.url("api-gateway"))
    settings = bot_settings(fleet, telegram, tmp_path, replay_interval_seconds=0.2)
    settings = settings.model_copy(update={"gateway_url": gateway})  # the bot reaches the gateway through the proxy
    bot = ClockedRunner(settings, clock)
    await bot.start()
    try:
        pair = await tutor_and_student(telegram, bot)
        repitbot = services(bot)
        api = repitbot.api
        due = datetime.now(UTC) + timedelta(days=2)
        homework = await api.post(
            pair.tutor_session,
            "/api/v1/homework",
            {"student_id": pair.student_session.user_id, "title": "Exercise 12", "due_at": due.isoformat()},
        )
        student = Caller(repitbot, pair.student_session, "en", pair.student.id, pair.student.id)

        def schedule() -> object:
            now = clock.now()
            return api.get(
                pair.student_session,
                "/api/v1/lessons",
                **{"from": now.isoformat(), "to": (now + timedelta(days=7)).isoformat()},
            )

        fresh, fetched_at = await read_view(student, "schedule", schedule)
        assert fetched_at is None and stale_mark(student, fetched_at) == ""

        gateway_proxy.cut()
        cached, fetched_at = await read_view(student, "schedule", schedule)
        assert cached == fresh and fetched_at is not None
        assert stale_mark(student, fetched_at).startswith("⚠️ The service is unavailable; data as of ")

        mark = telegram.mark()
        with pytest.raises(fallback.Queued):
            await fallback.queue_or_send(
                student,
                "homework.submit",
                "Exercise 12",
                "POST",
                f"/api/v1/homework/{homework['id']}/submissions",
                json_body={"text": "x = 42"},
            )
        await telegram.wait_for(
            "sendMessage",
            chat_id=pair.student.id,
            after=mark,
            where=lambda c: c.text.startswith("The service is unavailable right now. I saved “Exercise 12”"),
        )
        assert repitbot.offline is not None
        assert [w.kind for w in await repitbot.offline.pending(pair.student.id)] == ["homework.submit"]

        gateway_proxy.restore()
        clock.advance(60)  # past the client's breaker reset: the next call probes the gateway again
        await telegram.wait_for(
            "sendMessage", chat_id=pair.student.id, after=mark, where=lambda c: c.text == "✅ Sent: “Exercise 12”."
        )
        assert await repitbot.offline.pending() == []
        submissions = await api.get(pair.tutor_session, f"/api/v1/homework/{homework['id']}/submissions")
        assert [s["text"] for s in submissions["items"]] == ["x = 42"]
        told = [c for c in telegram.sent("sendMessage", pair.student.id) if "Exercise 12" in c.text and "✅" in c.text]
        assert len(told) == 1
    finally:
        await bot.stop()
