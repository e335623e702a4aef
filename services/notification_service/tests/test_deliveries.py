"""The delivery log: every notification decided on, updated by the bot's notification.delivered / .failed;
GET /api/v1/notifications/deliveries pages it (the caller's own; an admin reads anyone's)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import httpx

from services.notification_service.tests.conftest import NOW, Events, log_of
from shared.events.catalogue import HomeworkAssigned, NotificationDelivered, NotificationFailed
from shared.testing import infra

URL = "/api/v1/notifications/deliveries"


async def test_the_log_pages_newest_first_and_follows_the_bots_answers(
    client: httpx.AsyncClient, events: Events, db: asyncpg.Pool
) -> None:
    family = await events.family()
    student = uuid.UUID(family.student.id)
    for i in range(5):
        work = HomeworkAssigned(
            homework_id=uuid.uuid4(),
            tutor_id=uuid.UUID(family.tutor.id),
            student_id=student,
            title=f"Task {i}",
            due_at=NOW + timedelta(days=10),
        )
        await events.send(work, producer="homework-service")
    rows = await log_of(db, family.student.id)
    assert len(rows) == 5 and {r["status"] for r in rows} == {"requested"}

    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(URL, params=params, headers=family.student.headers)
        assert page.status_code == 200, page.text
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [x["id"] for x in seen] == [str(r["id"]) for r in reversed(rows)]
    assert {x["params"]["title"] for x in seen} == {f"Task {i}" for i in range(5)}

    first, second = rows[0]["id"], rows[1]["id"]
    await events.send(
        NotificationDelivered(notification_id=first, user_id=student, chat_id=444, telegram_message_id=91),
        NotificationFailed(notification_id=second, user_id=student, chat_id=444, reason="bot blocked", permanent=True),
        producer="telegram-bot",
    )
    # a late failure never undoes a delivery
    await events.send(
        NotificationFailed(notification_id=first, user_id=student, reason="timeout"), producer="telegram-bot"
    )
    delivered = await client.get(URL, params={"status": "delivered"}, headers=family.student.headers)
    [item] = delivered.json()["items"]
    assert item["id"] == str(first) and item["delivered_at"] is not None
    [failed] = (await client.get(URL, params={"status": "failed"}, headers=family.student.headers)).json()["items"]
    assert failed["id"] == str(second) and failed["reason"] == "bot blocked (permanent)"


async def test_only_the_user_and_admins_read_a_log(client: httpx.AsyncClient, events: Events) -> None:
    family = await events.family()
    mine = await client.get(URL, headers=family.parent.headers)
    assert mine.status_code == 200 and mine.json() == {"items": [], "next_cursor": None}
    for other in (family.tutor, family.student):
        refused = await client.get(URL, params={"user_id": family.parent.id}, headers=other.headers)
        assert refused.status_code == 404, refused.text
    admin = events.person("admin")
    assert (await client.get(URL, params={"user_id": family.parent.id}, headers=admin.headers)).status_code == 200
    bad = await client.get(URL, params={"cursor": "nonsense", "status": "lost"}, headers=family.parent.headers)
    assert bad.status_code == 422 and {d["field"] for d in bad.json()["error"]["details"]} >= {"status"}


async def test_the_migrations_create_exactly_the_models(database_url: str) -> None:
    diff = await infra.schema_differences("notification-service", database_url)
    assert diff == [], f"the models and the migrations differ; add a revision: {diff}"
