"""The tutor's bonuses and corrections: a ledger row with the reason, the level following the total
(down too), achievements kept, student.xp_awarded, Idempotency-Key, 422 naming the field, and only
the student's own tutor."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from services.student_service.tests.conftest import NOW, Events, profile_of
from services.student_service.tests.test_awards import linked
from shared.testing.service import People, Person


def url(student: Person) -> str:
    return f"/api/v1/students/{student.id}/xp-adjustments"


async def adjust(client: httpx.AsyncClient, tutor: Person, student: Person, **body: Any) -> dict[str, Any]:
    response = await client.post(url(student), json=body, headers=tutor.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def xp_events(db: asyncpg.Pool, student: Person) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT envelope->'payload' AS p FROM outbox_events WHERE event_type = 'student.xp_awarded'"
        " AND envelope->'payload'->>'student_id' = $1 ORDER BY created_at",
        student.id,
    )
    return [json.loads(r["p"]) for r in rows]


async def test_a_bonus_and_a_correction_are_ledger_rows_and_the_level_follows_the_total(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))

    bonus = await adjust(client, tutor, student, amount=800, reason="  Olympiad finalist  ")
    assert bonus["source"] == "bonus" and bonus["reason"] == "Olympiad finalist"
    assert (bonus["xp"], bonus["level"], bonus["occurred_at"]) == (800, 5, NOW.isoformat().replace("+00:00", "Z"))
    profile = await profile_of(client, student)
    assert (profile["xp"], profile["level"]) == (800, 5)
    assert "level_5" in {a["code"] for a in profile["achievements"]}

    # a negative correction lowers the level (derived from the total); the achievement stays
    correction = await adjust(client, tutor, student, amount=-750, reason="bonus was meant for another student")
    assert (correction["source"], correction["xp"], correction["level"]) == ("correction", 50, 1)
    profile = await profile_of(client, student)
    assert (profile["xp"], profile["level"], profile["next_level_xp"]) == (50, 1, 100)
    assert "level_5" in {a["code"] for a in profile["achievements"]}
    # a positive correction is a correction when the tutor says so
    fixed = await adjust(client, tutor, student, amount=20, reason="grade recorded wrongly", kind="correction")
    assert fixed["source"] == "correction" and fixed["xp"] == 70

    rows = await db.fetch(
        "SELECT id, amount, source, reason, tutor_id, source_event_id FROM xp_ledger WHERE student_id = $1"
        " ORDER BY occurred_at, amount DESC",
        uuid.UUID(student.id),
    )
    assert [(r["amount"], r["source"]) for r in rows] == [(800, "bonus"), (20, "correction"), (-750, "correction")]
    assert {str(r["id"]) for r in rows} == {bonus["id"], correction["id"], fixed["id"]}
    assert all(r["tutor_id"] == uuid.UUID(tutor.id) and r["source_event_id"] is None for r in rows)

    history = (await client.get(f"/api/v1/students/{student.id}/xp", headers=student.headers)).json()["items"]
    assert {(i["source"], i["source_id"], i["reason"]) for i in history} == {
        ("bonus", bonus["id"], "Olympiad finalist"),
        ("correction", correction["id"], "bonus was meant for another student"),
        ("correction", fixed["id"], "grade recorded wrongly"),
    }
    announced = await xp_events(db, student)
    assert [(e["amount"], e["source"], e["total_xp"]) for e in announced] == [
        (800, "bonus", 800),
        (-750, "correction", 50),
        (20, "correction", 70),
    ]
    assert announced[0]["reason"] == "Olympiad finalist" and announced[0]["tutor_id"] == tutor.id


async def test_an_idempotency_key_grants_once(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    headers = {**tutor.headers, "Idempotency-Key": f"bonus-{uuid.uuid4()}"}
    body = {"amount": 40, "reason": "helped a classmate"}

    first = await client.post(url(student), json=body, headers=headers)
    again = await client.post(url(student), json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert (await profile_of(client, student))["xp"] == 40
    assert len(await xp_events(db, student)) == 1
    other_body = await client.post(url(student), json={**body, "amount": 41}, headers=headers)
    assert other_body.status_code == 422


async def test_bad_adjustments_are_422_naming_the_field(
    client: httpx.AsyncClient, events: Events, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    for body, field in (
        ({"amount": 0, "reason": "nothing"}, "amount"),
        ({"reason": "no amount"}, "amount"),
        ({"amount": "50", "reason": "a string"}, "amount"),
        ({"amount": 1.5, "reason": "a fraction"}, "amount"),
        ({"amount": 10_001, "reason": "a typo"}, "amount"),
        ({"amount": -5, "reason": "a negative bonus", "kind": "bonus"}, "amount"),
        ({"amount": 5}, "reason"),
        ({"amount": 5, "reason": "   "}, "reason"),
        ({"amount": 5, "reason": "ok", "kind": "gift"}, "kind"),
    ):
        response = await client.post(url(student), json=body, headers=tutor.headers)
        assert response.status_code == 422, (body, response.text)
        assert {d["field"] for d in response.json()["error"]["details"]} == {field}, (body, response.text)
    assert (await profile_of(client, student))["xp"] == 0


async def test_only_the_students_own_tutor_adjusts(client: httpx.AsyncClient, events: Events, people: People) -> None:
    tutor, other_tutor = people.tutor(), people.tutor()
    student = people.student_of(tutor)
    parent = people.parent_of(student)
    await events.send(events.wrap(linked(tutor, student)))
    body = {"amount": 100, "reason": "just because"}
    assert (await client.post(url(student), json=body, headers=other_tutor.headers)).status_code == 404
    for who in (student, parent, people.admin()):
        assert (await client.post(url(student), json=body, headers=who.headers)).status_code == 403
    unknown = await client.post(f"/api/v1/students/{uuid.uuid4()}/xp-adjustments", json=body, headers=tutor.headers)
    assert unknown.status_code == 404
    assert (await client.post(url(student), json=body)).status_code == 401
    assert (await profile_of(client, student))["xp"] == 0
