"""analytics-service in the test fleet, through the gateway: a tutor's completed lesson is charged
by payment-service, and analytics reports that charge as the tutor's income (events settle, polled
bounded); the student sees their own progress, another tutor gets 404."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from shared.testing.accounts import register
from shared.testing.fleet import TestFleet

TZ = "Asia/Tokyo"
PRICE = 180_000


async def test_the_tutors_income_is_the_charge_payment_service_made(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway:
        tutor, other = (
            await register(gateway, "tutor", timezone=TZ),
            await register(gateway, "other tutor", timezone=TZ),
        )
        invite = await gateway.post("/api/v1/users/invites", json={"role": "student"}, headers=tutor.headers)
        student = await register(gateway, "student", invite.json()["code"], timezone=TZ)
        price = await gateway.put(
            "/api/v1/payments/prices/default", json={"amount": PRICE, "currency": "RUB"}, headers=tutor.headers
        )
        assert price.status_code == 200, price.text
        starts = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
        lesson = await gateway.post(
            "/api/v1/lessons",
            json={
                "student_id": student.id,
                "starts_at": starts.isoformat(),
                "duration_minutes": 60,
                "subject": "Maths",
            },
            headers=tutor.headers,
        )
        assert lesson.status_code == 201, lesson.text
        done = await gateway.post(
            f"/api/v1/lessons/{lesson.json()['id']}/complete", json={"grade": 5}, headers=tutor.headers
        )
        assert done.status_code == 200, done.text

        today = datetime.now(UTC).date()
        params = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
        url = f"/api/v1/analytics/tutors/{tutor.id}/summary"
        deadline = time.monotonic() + 30
        while True:
            response = await gateway.get(url, params=params, headers=tutor.headers)
            assert response.status_code == 200, response.text
            summary = response.json()
            if summary["income"] == [{"currency": "RUB", "amount": PRICE}] and summary["lessons"]["held"] == 1:
                break
            assert time.monotonic() < deadline, f"analytics never showed the charge: {summary}"
            await asyncio.sleep(0.2)
        assert summary["timezone"] == TZ  # from user.registered
        assert (await gateway.get(url, params=params, headers=other.headers)).status_code == 404

        progress = f"/api/v1/analytics/students/{student.id}/progress"
        assert (await gateway.get(progress, params=params, headers=student.headers)).status_code == 200
        assert (await gateway.get(progress, params=params, headers=other.headers)).status_code == 404
