"""payment-service in the test fleet, through the gateway: real user-service accounts and links,
top-up → balance, the access matrix, and a lesson event published on the fleet's exchange
charged exactly once (lesson-service is not needed: the test publishes as it would)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.events.catalogue import LessonCompleted
from shared.events.envelope import Envelope
from shared.testing.accounts import cast
from shared.testing.events import EventRecorder, eventually, publish
from shared.testing.fleet import TestFleet


async def test_top_up_then_balance_through_the_gateway_with_the_access_matrix(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway:
        people = (await cast(gateway)).matrix()
        student_id = people["student"].id
        body = {"student_id": student_id, "amount": 300_000, "currency": "RUB", "method": "transfer"}
        top_ups: dict[str, int] = {}
        for who, person in people.items():
            headers = {**person.headers, "Idempotency-Key": f"{who}-{uuid.uuid4()}"}
            top_ups[who] = (await gateway.post("/api/v1/payments/top-ups", json=body, headers=headers)).status_code
        assert top_ups == {
            "tutor_a": 201,
            "tutor_b": 404,
            "student": 403,
            "parent": 403,
            "student_b": 403,
            "anonymous": 401,
        }

        replayed = {**people["tutor_a"].headers, "Idempotency-Key": "fleet-top-up"}
        first = await gateway.post("/api/v1/payments/top-ups", json={**body, "amount": 1000}, headers=replayed)
        again = await gateway.post("/api/v1/payments/top-ups", json={**body, "amount": 1000}, headers=replayed)
        assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]

        balances = {}
        for who, person in people.items():
            response = await gateway.get(f"/api/v1/payments/balances/{student_id}", headers=person.headers)
            balances[who] = (response.status_code, response.json().get("balance"))
        assert balances == {
            "tutor_a": (200, 301_000),
            "tutor_b": (404, None),
            "student": (200, 301_000),
            "student_b": (404, None),
            "parent": (200, 301_000),
            "anonymous": (401, None),
        }
        shape = (await gateway.get(f"/api/v1/payments/balances/{student_id}", headers=people["student"].headers)).json()
        assert {"student_id", "balance", "currency", "lessons_covered", "covered_until"} <= set(shape)


async def test_a_lesson_event_on_the_fleets_exchange_is_charged_exactly_once(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway, EventRecorder(fleet.rabbit_url) as events:
        people = (await cast(gateway)).matrix()
        tutor, student_id = people["tutor_a"], people["student"].id
        price = await gateway.put(
            "/api/v1/payments/prices/default", json={"amount": 2000, "currency": "RUB"}, headers=tutor.headers
        )
        assert price.status_code == 200, price.text
        headers = {**tutor.headers, "Idempotency-Key": str(uuid.uuid4())}
        body = {"student_id": student_id, "amount": 5000, "currency": "RUB", "method": "cash"}
        assert (await gateway.post("/api/v1/payments/top-ups", json=body, headers=headers)).status_code == 201

        starts = datetime.now(UTC) - timedelta(hours=2)
        lesson = LessonCompleted(
            lesson_id=uuid.uuid4(),
            tutor_id=uuid.UUID(tutor.id),
            student_id=uuid.UUID(student_id),
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
            subject="physics",
            grade=5,
        )
        event = Envelope.wrap(lesson, producer="lesson-service", correlation_id=uuid.uuid4().hex)
        await publish(fleet.rabbit_url, event, event)  # a duplicated delivery

        def charged(e: Envelope) -> bool:
            return e.payload["lesson_id"] == str(lesson.lesson_id)

        payment = await events.wait_for("payment.charged", charged, timeout=20)
        assert (payment.payload["amount"], payment.payload["balance_after"]) == (2000, 3000)
        assert payment.producer == "payment-service" and payment.causation_id == str(event.event_id)
        await publish(fleet.rabbit_url, Envelope.wrap(lesson, producer="lesson-service", correlation_id="retry"))
        await events.assert_none("payment.charged", lambda e: charged(e) and e.event_id != payment.event_id, within=2)

        async def balance_is(expected: int) -> bool:
            response = await gateway.get(f"/api/v1/payments/balances/{student_id}", headers=tutor.headers)
            return response.json()["balance"] == expected

        await eventually(lambda: balance_is(3000), what="one charge of 2000")
        statement = await gateway.get(f"/api/v1/payments/statements/{student_id}", headers=people["parent"].headers)
        assert [item["kind"] for item in statement.json()["items"]] == ["lesson_charge", "top_up"]
