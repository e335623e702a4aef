"""``Now``: a route's current time is the app's clock, so a test's FakeClock reaches every route."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from shared.clock import FakeClock, Now


async def test_now_reads_the_clock_the_app_was_given() -> None:
    clock = FakeClock(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    app = FastAPI()
    app.state.clock = clock

    @app.get("/now")
    async def read_now(now: Now) -> dict[str, str]:
        return {"now": now.isoformat()}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        assert (await client.get("/now")).json() == {"now": "2026-05-01T09:00:00+00:00"}
        clock.advance(90)
        assert (await client.get("/now")).json() == {"now": "2026-05-01T09:01:30+00:00"}
