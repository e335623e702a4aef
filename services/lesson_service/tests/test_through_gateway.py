"""The lessons journey on the test fleet, through the gateway: real user-service accounts and invites,
JWT at the edge and again in lesson-service, access links from user-service, events on RabbitMQ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.testing.accounts import invite, register
from shared.testing.events import EventRecorder, eventually
from shared.testing.fleet import TestFleet


@pytest.fixture
async def gateway(fleet: TestFleet) -> Any:
    async with fleet.client("api-gateway") as client:
        yield client


def soon(hours: float) -> str:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3, hours=hours)
    return start.isoformat()


async def test_the_lesson_journey_and_who_may_do_what(gateway: httpx.AsyncClient, fleet: TestFleet) -> None:
    async with EventRecorder(fleet.rabbit_url) as events:
        tutor_a, tutor_b = await register(gateway, "tutor a"), await register(gateway, "tutor b")
        student = await register(
            gateway, "student", await invite(gateway, tutor_a, "student"), timezone="Asia/Yekaterinburg"
        )
        parent = await register(gateway, "parent", await invite(gateway, tutor_a, "parent", student.id))

        body = {
            "student_id": student.id,
            "starts_at": soon(0),
            "duration_minutes": 60,
            "subject": "Physics",
            "topic": "Newton's laws",
            "lesson_type": "trial",
            "price": 150000,
        }
        # scheduled right after the invite was redeemed: access comes from user-service if the event is late
        response = await gateway.post("/api/v1/lessons", json=body, headers=tutor_a.headers)
        assert response.status_code == 201, response.text
        lesson = response.json()
        assert lesson["status"] == "scheduled"

        overlap = await gateway.post("/api/v1/lessons", json={**body, "starts_at": soon(0.5)}, headers=tutor_a.headers)
        assert overlap.status_code == 409
        assert overlap.json()["error"]["details"]["conflicting_lesson_id"] == lesson["id"]

        # the matrix: read and complete
        url = f"/api/v1/lessons/{lesson['id']}"
        assert (await gateway.get(url)).status_code == 401
        for who, expected in ((tutor_a, 200), (student, 200), (parent, 200), (tutor_b, 404)):
            assert (await gateway.get(url, headers=who.headers)).status_code == expected, who.role
        for who, expected in ((student, 403), (parent, 403), (tutor_b, 404)):
            response = await gateway.post(f"{url}/complete", json={"grade": 5}, headers=who.headers)
            assert response.status_code == expected, (who.role, response.text)
        for who, expected in ((student, 403), (parent, 403), (tutor_b, 404)):
            response = await gateway.post("/api/v1/lessons", json=body, headers=who.headers)
            assert response.status_code == expected, (who.role, response.text)
        assert (await gateway.post(f"{url}/complete", json={"grade": 5})).status_code == 401

        key = {"Idempotency-Key": f"complete-{lesson['id']}"}
        done = await gateway.post(
            f"{url}/complete",
            json={"grade": 5, "mastery": "learned", "notes": "Good"},
            headers=tutor_a.headers | key,
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        replay = await gateway.post(
            f"{url}/complete",
            json={"grade": 5, "mastery": "learned", "notes": "Good"},
            headers=tutor_a.headers | key,
        )
        assert replay.status_code == 200 and replay.json() == done.json()
        again = await gateway.post(f"{url}/complete", json={"grade": 4}, headers=tutor_a.headers)
        assert again.status_code == 409

        window = {"from": soon(-1), "to": soon(2)}
        for who in (tutor_a, student, parent):
            listed = await gateway.get("/api/v1/lessons", params=window, headers=who.headers)
            assert [x["id"] for x in listed.json()["items"]] == [lesson["id"]], who.role
        assert (await gateway.get("/api/v1/lessons", params=window, headers=tutor_b.headers)).json()["items"] == []

        def is_ours(event: Any) -> bool:
            return event.payload["lesson_id"] == lesson["id"]

        scheduled = await events.wait_for("lesson.scheduled", is_ours)
        assert scheduled.producer == "lesson-service"
        assert scheduled.payload["lesson_type"] == "trial" and scheduled.payload["price"] == 150000
        completed = await events.wait_for("lesson.completed", is_ours)
        assert completed.payload["grade"] == 5 and completed.payload["mastery"] == "learned"
        assert completed.payload["chargeable"] is True and completed.payload["attendance"] == "present"
        await events.assert_none("lesson.completed", lambda e: is_ours(e) and e is not completed, within=0.5)

        # the student's own time zone, learnt from user.registered
        async def local_view() -> bool:
            response = await gateway.get(
                "/api/v1/lessons/schedule",
                params={"view": "day", "date": soon(0)[:10]},
                headers=student.headers,
            )
            return response.json()["timezone"] == "Asia/Yekaterinburg"

        await eventually(local_view, what="the student's time zone from user.registered")

        # an iCalendar feed, public through the gateway with its secret token only
        feed = await gateway.post("/api/v1/lessons/calendar-feed", headers=student.headers)
        assert feed.status_code == 201, feed.text
        ics = await gateway.get("/api/v1/lessons/calendar.ics", params={"token": feed.json()["token"]})
        assert ics.status_code == 200, ics.text
        assert ics.headers["content-type"].startswith("text/calendar") and f"{lesson['id']}@repitbot" in ics.text
        assert (await gateway.get("/api/v1/lessons/calendar.ics", params={"token": "x" * 43})).status_code == 404
