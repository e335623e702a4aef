"""notification-service in the test fleet, through the gateway: a lesson scheduled at lesson-service gets
its student's reminders at T−24 h and T−1 h (and their parent's); a cancelled one has them withdrawn;
another tutor is refused."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.testing.accounts import Account, invite, register
from shared.testing.fleet import TestFleet


async def _reminders(
    gateway: httpx.AsyncClient, who: Account, lesson_id: str, until: Any, seconds: float = 15.0
) -> list[dict[str, Any]]:
    """Poll the lesson's reminders (bounded) until ``until(items)``; the last answer otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        response = await gateway.get(
            "/api/v1/notifications/reminders", params={"lesson_id": lesson_id}, headers=who.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        if until(items) or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.2)


async def test_reminders_for_a_scheduled_lesson_and_none_once_cancelled(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway:
        tutor, other = await register(gateway, "tutor"), await register(gateway, "other tutor")
        student = await register(gateway, "student", await invite(gateway, tutor, "student"))
        parent = await register(gateway, "parent", await invite(gateway, tutor, "parent", student.id))
        start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        body = {"student_id": student.id, "starts_at": start.isoformat(), "duration_minutes": 60, "subject": "Maths"}
        response = await gateway.post("/api/v1/lessons", json=body, headers=tutor.headers)
        assert response.status_code == 201, response.text
        lesson_id = response.json()["id"]

        items = await _reminders(gateway, tutor, lesson_id, lambda xs: len(xs) == 4)
        expected = {(who.id, minutes) for who in (student, parent) for minutes in (1440, 60)}
        assert {(x["user_id"], x["offset_minutes"]) for x in items} == expected, items
        assert {x["status"] for x in items} == {"pending"}
        due = {datetime.fromisoformat(x["due_at"]) for x in items}
        assert due == {start - timedelta(hours=24), start - timedelta(hours=1)}

        refused = await gateway.get(
            "/api/v1/notifications/reminders", params={"lesson_id": lesson_id}, headers=other.headers
        )
        assert refused.status_code == 404, refused.text

        cancelled = await gateway.post(
            f"/api/v1/lessons/{lesson_id}/cancel", json={"reason": "ill"}, headers=student.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        items = await _reminders(gateway, tutor, lesson_id, lambda xs: {x["status"] for x in xs} == {"withdrawn"})
        assert len(items) == 4 and {x["status"] for x in items} == {"withdrawn"}, items


async def test_preferences_round_trip_and_homework_assigned_reaches_the_students_delivery_log(
    fleet: TestFleet,
) -> None:
    async with fleet.client("api-gateway") as gateway:
        tutor = await register(gateway, "tutor")
        student = await register(gateway, "student", await invite(gateway, tutor, "student"))
        chosen = {"language": "en", "reminder_offsets_minutes": [90], "quiet_hours": {"start": "23:00", "end": "06:00"}}
        saved = await gateway.put("/api/v1/notifications/preferences", json=chosen, headers=student.headers)
        assert saved.status_code == 200, saved.text
        read = await gateway.get("/api/v1/notifications/preferences", headers=student.headers)
        assert read.status_code == 200 and {k: read.json()[k] for k in chosen} == chosen, read.text
        bad = await gateway.put("/api/v1/notifications/preferences", json={"language": "xx"}, headers=student.headers)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "language", bad.text

        due = (datetime.now(UTC) + timedelta(days=4)).isoformat()
        body = {"student_id": student.id, "title": "Essay", "due_at": due}
        assigned = await gateway.post("/api/v1/homework", json=body, headers=tutor.headers)
        assert assigned.status_code == 201, assigned.text
        homework_id = assigned.json()["id"]

        deadline = time.monotonic() + 15
        while True:
            log = await gateway.get("/api/v1/notifications/deliveries", headers=student.headers)
            assert log.status_code == 200, log.text
            found = [x for x in log.json()["items"] if x["params"].get("homework_id") == homework_id]
            if found or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert len(found) == 1, log.json()
        [entry] = found
        assert entry["template"] == "homework_assigned" and entry["params"]["language"] == "en"
        assert entry["status"] in ("requested", "deferred", "delivered", "failed")  # deferred inside 23:00–06:00
        assert entry["dedup_key"] == f"homework_assigned:{homework_id}:{student.id}"
        other = await gateway.get(
            "/api/v1/notifications/deliveries", params={"user_id": student.id}, headers=tutor.headers
        )
        assert other.status_code == 404, other.text
