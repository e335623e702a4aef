"""homework-service in the test fleet, through the gateway: real user-service accounts and links,
assign → submit → grade with the access matrix, and the events on the fleet's exchange."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.events.envelope import Envelope
from shared.testing.accounts import cast
from shared.testing.events import EventRecorder
from shared.testing.fleet import TestFleet


async def test_assign_submit_grade_through_the_gateway_with_the_access_matrix(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway, EventRecorder(fleet.rabbit_url) as events:
        everyone = (await cast(gateway)).matrix()
        tutor_a, student, parent = everyone["tutor_a"], everyone["student"], everyone["parent"]
        people = {who: account for who, account in everyone.items() if who != "anonymous"}
        due_at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        body = {"student_id": student.id, "title": "Exercises 1-10", "due_at": due_at}

        created = {}
        for who, person in everyone.items():
            response = await gateway.post("/api/v1/homework", json=body, headers=person.headers)
            created[who] = response.status_code
        assert created == {
            "tutor_a": 201,
            "tutor_b": 404,
            "student": 403,
            "parent": 403,
            "student_b": 403,
            "anonymous": 401,
        }

        response = await gateway.post("/api/v1/homework", json=body, headers=tutor_a.headers)
        homework = response.json()
        assert homework["status"] == "assigned"
        url = f"/api/v1/homework/{homework['id']}"

        reads = {who: (await gateway.get(url, headers=p.headers)).status_code for who, p in people.items()}
        assert reads == {"tutor_a": 200, "tutor_b": 404, "student": 200, "parent": 200, "student_b": 404}
        assert (await gateway.get(url)).status_code == 401

        material = str(uuid.uuid4())
        headers = {**student.headers, "Idempotency-Key": str(uuid.uuid4())}
        submission = {"text": "my answers", "material_ids": [material]}
        first = await gateway.post(f"{url}/submissions", json=submission, headers=headers)
        again = await gateway.post(f"{url}/submissions", json=submission, headers=headers)
        assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
        refused = await gateway.post(f"{url}/submissions", json=submission, headers=parent.headers)
        assert refused.status_code == 403

        for who in ("tutor_b", "student", "parent"):
            response = await gateway.post(f"{url}/grade", json={"grade": 5}, headers=people[who].headers)
            assert response.status_code in (403, 404), (who, response.text)
        graded = await gateway.post(f"{url}/grade", json={"grade": 5, "comment": "Great"}, headers=tutor_a.headers)
        assert graded.status_code == 200 and graded.json()["status"] == "graded", graded.text

        params = {"status": "graded", "student_id": student.id}
        listed = await gateway.get("/api/v1/homework", params=params, headers=parent.headers)
        assert [x["id"] for x in listed.json()["items"]] == [homework["id"]]

        def mine(e: Envelope) -> bool:
            return e.payload["homework_id"] == homework["id"]

        await events.wait_for("homework.assigned", mine, timeout=20)
        submitted = await events.wait_for("homework.submitted", mine, timeout=20)
        assert submitted.payload["material_ids"] == [material] and submitted.producer == "homework-service"
        grade = await events.wait_for("homework.graded", mine, timeout=20)
        assert grade.payload["grade"] == 5
        await events.assert_none("homework.submitted", lambda e: mine(e) and e.event_id != submitted.event_id)
