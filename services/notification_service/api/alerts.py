"""``POST /internal/alerts``: Alertmanager's webhook (its JSON, version 4), protected by a bearer token
(``ALERTMANAGER_TOKEN``); each alert becomes a ``notification.requested`` to every admin (known from
``user.registered`` with role admin). Not routed by the gateway."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.notification_service.models import Recipient
from shared.db import SessionDep
from shared.errors import Unauthorized
from shared.events.catalogue import NotificationRequested
from shared.events.outbox import add_event

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


class Alert(BaseModel):
    status: str = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None  # Alertmanager's names
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class AlertmanagerWebhook(BaseModel):
    version: str | None = None
    status: str = "firing"
    receiver: str | None = None
    groupKey: str | None = None
    alerts: list[Alert] = Field(default_factory=list)


def _authorised(request: Request) -> None:
    expected: str = request.app.state.settings.alertmanager_token
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("A valid bearer token is required", details={"reason": "alertmanager token"})


def _fingerprint(alert: Alert) -> str:
    if alert.fingerprint:
        return alert.fingerprint
    labels = ",".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    return hashlib.sha256(labels.encode()).hexdigest()[:16]


@router.post("/alerts", status_code=202)
async def alertmanager_webhook(body: AlertmanagerWebhook, request: Request, session: SessionDep) -> dict[str, Any]:
    """One ``notification.requested`` per alert and admin; a resent alert (same fingerprint, status and
    start) carries the same ``dedup_key``, so the bot tells each admin once."""
    _authorised(request)
    admins = list(await session.scalars(select(Recipient).where(Recipient.role == "admin")))
    requested = 0
    for alert in body.alerts:
        params = {
            "status": alert.status,
            "alertname": alert.labels.get("alertname"),
            "severity": alert.labels.get("severity"),
            "service": alert.labels.get("service") or alert.labels.get("job"),
            "summary": alert.annotations.get("summary"),
            "description": alert.annotations.get("description"),
            "starts_at": alert.startsAt,
            "ends_at": alert.endsAt,
        }
        key = f"alert:{_fingerprint(alert)}:{alert.status}:{alert.startsAt}"
        for admin in admins:
            await add_event(
                session,
                NotificationRequested(
                    notification_id=uuid.uuid4(),
                    user_id=admin.user_id,
                    chat_id=admin.telegram_id,
                    template="alert_resolved" if alert.status == "resolved" else "alert_firing",
                    params={**params, "language": admin.language},
                    dedup_key=f"{key}:{admin.user_id}",
                ),
            )
            requested += 1
    return {"alerts": len(body.alerts), "notifications": requested}
