"""``POST /internal/alerts``: Alertmanager's webhook (its JSON, version 4), protected by a bearer token
(``ALERTMANAGER_TOKEN``); each alert becomes a ``notification.requested`` to every admin (known from
``user.registered`` with role admin). Not routed by the gateway."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.notification_service.domain.delivery import notify
from services.notification_service.models import Recipient
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import Unauthorized

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
async def alertmanager_webhook(
    body: AlertmanagerWebhook, request: Request, session: SessionDep, now: Now
) -> dict[str, Any]:
    """One ``notification.requested`` per alert and admin, urgent (quiet hours do not hold it); a resent
    alert (same fingerprint, status and start) has the same ``dedup_key`` and is not requested again."""
    _authorised(request)
    admins = list(await session.scalars(select(Recipient.user_id).where(Recipient.role == "admin")))
    requested = 0
    for alert in body.alerts:
        params = {
            "status": alert.status,
            "alertname": alert.labels.get("alertname"),
            "severity": alert.labels.get("severity"),
            "service": alert.labels.get("service") or alert.labels.get("job"),
            "summary": alert.annotations.get("summary"),
            "description": alert.annotations.get("description"),
            "runbook": alert.annotations.get("runbook"),  # what to do: the admin reads it at 3 a.m.
            "starts_at": alert.startsAt,
            "ends_at": alert.endsAt,
        }
        key = f"alert:{_fingerprint(alert)}:{alert.status}:{alert.startsAt}"
        for admin in admins:
            notification_id = await notify(
                session,
                admin,
                kind="alert",
                template="alert_resolved" if alert.status == "resolved" else "alert_firing",
                params=params,
                dedup_key=f"{key}:{admin}",
                now=now,
                urgent=True,
            )
            requested += notification_id is not None
    return {"alerts": len(body.alerts), "notifications": requested}
