"""POST /internal/alerts: Alertmanager's webhook with its bearer token tells every admin (known from
user.registered with role admin) through notification.requested; a wrong or missing token → 401."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from services.notification_service.tests.conftest import ALERT_TOKEN, Events, requested


def webhook(alertname: str, status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "repitbot-admins",
        "groupKey": "{}:{alertname=" + alertname + "}",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": alertname, "severity": "critical", "service": "payment-service"},
                "annotations": {
                    "summary": "payment-service is down",
                    "runbook": "FINAL_MICROSERVICES_DOCUMENTATION.md#runbook-servicedown",
                },
                "startsAt": "2030-01-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }


async def test_an_alert_goes_to_every_admin_once_per_status(
    client: httpx.AsyncClient, events: Events, db: asyncpg.Pool
) -> None:
    admin = events.person("admin")
    await events.register(admin, telegram_id=777)
    tutor = events.person("tutor")
    await events.register(tutor)
    name = f"ServiceDown{uuid.uuid4().hex[:6]}"
    body = webhook(name)
    headers = {"Authorization": f"Bearer {ALERT_TOKEN}"}

    response = await client.post("/internal/alerts", json=body, headers=headers)
    assert response.status_code == 202, response.text
    firing = await requested(db, template="alert_firing", params={"alertname": name})
    assert str(admin.id) in {x["user_id"] for x in firing}
    assert str(tutor.id) not in {x["user_id"] for x in firing}
    mine = next(x for x in firing if x["user_id"] == str(admin.id))
    assert mine["chat_id"] == 777 and mine["params"]["summary"] == "payment-service is down"
    assert mine["params"]["runbook"] == "FINAL_MICROSERVICES_DOCUMENTATION.md#runbook-servicedown"

    # Alertmanager resends: the same dedup_key, so the bot tells the admin once
    assert (await client.post("/internal/alerts", json=body, headers=headers)).status_code == 202
    again = await requested(db, template="alert_firing", params={"alertname": name}, user_id=str(admin.id))
    assert len({x["dedup_key"] for x in again}) == 1

    resolved = {**body, "status": "resolved", "alerts": [{**body["alerts"][0], "status": "resolved"}]}
    assert (await client.post("/internal/alerts", json=resolved, headers=headers)).status_code == 202
    assert await requested(db, template="alert_resolved", params={"alertname": name}, user_id=str(admin.id))


async def test_the_webhook_refuses_a_wrong_or_missing_token(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    name = f"Refused{uuid.uuid4().hex[:6]}"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {ALERT_TOKEN}"}):
        response = await client.post("/internal/alerts", json=webhook(name), headers=headers)
        assert response.status_code == 401, response.text
    assert await requested(db, params={"alertname": name}) == []
