"""Telling one user one thing, once: the kinds, the user's preferences (kinds switched off, quiet hours,
language), the delivery log and the pass that sends what quiet hours deferred.

Every notification is a ``deliveries`` row unique by its ``dedup_key`` (derived from what caused it), added
in the transaction of its cause; only a row that was actually inserted adds a ``notification.requested``
to the outbox, so a redelivered event, a producer's repeat or a second scheduler never tells twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.models import Delivery, Recipient
from shared.db import Database
from shared.events.catalogue import NotificationDelivered, NotificationFailed, NotificationRequested
from shared.events.outbox import add_event
from shared.tables import access_links

log = logging.getLogger(__name__)

# What a user can switch off (PUT /api/v1/notifications/preferences), each naming one or more templates.
KINDS = (
    "lesson_reminder",  # lesson_reminder
    "schedule_change",  # lesson_scheduled, lesson_rescheduled, lesson_cancelled
    "homework_assigned",  # homework_assigned
    "homework_due",  # homework_due_tomorrow
    "homework_graded",  # homework_graded
    "homework_submitted",  # homework_submitted (to the tutor)
    "lesson_report",  # lesson_report (to parents)
    "payment_received",  # payment_received
    "balance_low",  # balance_low
    "level_up",  # level_up
    "achievement_unlocked",  # achievement_unlocked
    "weekly_summary",  # weekly_summary (to parents)
    "monthly_report",  # monthly_report
    "alert",  # alert_firing, alert_resolved (to admins)
)
LANGUAGES = ("ru", "en")
DEFAULT_ZONE = "UTC"

Late = Literal["drop", "send"]


@dataclass(frozen=True)
class Decision:
    status: str  # requested | deferred | suppressed | dropped
    deliver_at: datetime | None = None
    reason: str | None = None


def zone_of(recipient: Recipient | None) -> ZoneInfo:
    try:
        return ZoneInfo(recipient.timezone if recipient else DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def language_of(recipient: Recipient | None) -> str | None:
    if recipient is None:
        return None
    return recipient.preferred_language or recipient.language


def quiet_until(recipient: Recipient | None, now: datetime) -> datetime | None:
    """When the recipient's quiet hours end, if ``now`` falls inside them (their local time; a window may
    wrap midnight, e.g. 22:00–08:00); None outside them or without any."""
    if recipient is None or recipient.quiet_hours_start is None or recipient.quiet_hours_end is None:
        return None
    start, end = recipient.quiet_hours_start, recipient.quiet_hours_end
    zone = zone_of(recipient)
    local = now.astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    inside = start <= moment < end if start < end else (moment >= start or moment < end)
    if not inside:
        return None
    ends = datetime.combine(local.date(), end, tzinfo=zone)
    if ends <= local:
        ends = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return ends.astimezone(UTC)


def decide(
    recipient: Recipient | None,
    kind: str,
    now: datetime,
    *,
    urgent: bool = False,
    deadline: datetime | None = None,
    late: Late = "drop",
) -> Decision:
    """What to do with a notification of ``kind`` at ``now``: a kind switched off is suppressed; inside quiet
    hours it waits for their end, unless it is urgent, or their end is not before ``deadline`` (a lesson's
    start): then it is dropped, or sent at once when ``late`` says so (news of a change to that lesson)."""
    if recipient is not None and kind in (recipient.disabled_kinds or ()):
        return Decision("suppressed", reason=f"{kind} is switched off")
    ends = None if urgent else quiet_until(recipient, now)
    if ends is None:
        return Decision("requested")
    if deadline is not None and ends >= deadline:
        if late == "send":
            return Decision("requested", reason="quiet hours end too late: sent at once")
        return Decision("dropped", reason="quiet hours end after the lesson starts")
    return Decision("deferred", deliver_at=ends, reason="quiet hours")


def localized(params: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """JSON params: each time as UTC ISO plus ``<name>_local`` in the recipient's zone, dates as ISO, at any
    depth, so the bot renders times without knowing anybody's zone."""

    def value(x: Any) -> Any:
        if isinstance(x, dict):
            return localized(x, zone)
        if isinstance(x, list):
            return [value(item) for item in x]
        if isinstance(x, datetime):
            return x.astimezone(UTC).isoformat()
        if isinstance(x, date):
            return x.isoformat()
        if isinstance(x, uuid.UUID):
            return str(x)
        return x

    out: dict[str, Any] = {}
    for key, item in params.items():
        out[key] = value(item)
        if isinstance(item, datetime):
            out[f"{key}_local"] = item.astimezone(zone).isoformat()
    return out


async def recipients_by_id(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Recipient]:
    ids = set(user_ids)
    if not ids:
        return {}
    return {r.user_id: r for r in await session.scalars(select(Recipient).where(Recipient.user_id.in_(ids)))}


async def parents_of(session: AsyncSession, student_id: uuid.UUID) -> list[uuid.UUID]:
    """The student's parents, from the access links ``student.linked`` keeps (relation parent)."""
    rows = await session.scalars(
        select(access_links.c.principal_id)
        .where(
            access_links.c.student_id == student_id,
            access_links.c.relation == "parent",
            access_links.c.active == 1,
        )
        .order_by(access_links.c.principal_id)
    )
    return list(rows)


async def record(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    recipient: Recipient | None,
    kind: str,
    template: str,
    params: dict[str, Any],
    dedup_key: str,
    decision: Decision,
    now: datetime,
) -> uuid.UUID | None:
    """Log the notification and, when requested, add its ``notification.requested``; returns its id, or None
    when its ``dedup_key`` was logged before (it was decided on already: nothing more happens)."""
    zone = zone_of(recipient)
    rendered = localized({**params, "timezone": zone.key, "language": language_of(recipient)}, zone)
    notification_id = uuid.uuid4()
    inserted = await session.scalar(
        insert(Delivery)
        .values(
            id=notification_id,
            user_id=user_id,
            kind=kind,
            template=template,
            params=rendered,
            chat_id=recipient.telegram_id if recipient else None,
            dedup_key=dedup_key,
            status=decision.status,
            reason=decision.reason,
            deliver_at=decision.deliver_at,
            requested_at=now if decision.status == "requested" else None,
        )
        .on_conflict_do_nothing(constraint="uq_deliveries_dedup_key")
        .returning(Delivery.id)
    )
    if inserted is None:
        return None
    if decision.status == "requested":
        await add_event(session, _requested(notification_id, user_id, recipient, template, rendered, dedup_key))
    else:
        log.info(
            "notification %s",
            decision.status,
            extra={"notification_id": str(notification_id), "kind": kind, "reason": decision.reason},
        )
    return notification_id


def _requested(
    notification_id: uuid.UUID,
    user_id: uuid.UUID,
    recipient: Recipient | None,
    template: str,
    params: dict[str, Any],
    dedup_key: str,
) -> NotificationRequested:
    return NotificationRequested(
        notification_id=notification_id,
        user_id=user_id,
        chat_id=recipient.telegram_id if recipient else None,
        template=template,
        params=params,
        dedup_key=dedup_key,
    )


async def notify(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    kind: str,
    template: str,
    params: dict[str, Any],
    dedup_key: str,
    now: datetime,
    urgent: bool = False,
    deadline: datetime | None = None,
    late: Late = "drop",
) -> uuid.UUID | None:
    """Decide (preferences, quiet hours) and record one notification for ``user_id``."""
    recipient = await session.get(Recipient, user_id)
    decision = decide(recipient, kind, now, urgent=urgent, deadline=deadline, late=late)
    return await record(
        session,
        user_id=user_id,
        recipient=recipient,
        kind=kind,
        template=template,
        params=params,
        dedup_key=dedup_key,
        decision=decision,
        now=now,
    )


async def emit_deferred(database: Database, now: datetime, *, batch_size: int = 100) -> list[uuid.UUID]:
    """Send what quiet hours deferred and is due at ``now``: claimed ``FOR UPDATE SKIP LOCKED`` and marked
    requested in the transaction that adds its event, so once with any number of instances."""
    sent: list[uuid.UUID] = []
    while True:
        async with database.transaction() as session:
            rows = list(
                await session.scalars(
                    select(Delivery)
                    .where(Delivery.status == "deferred", Delivery.deliver_at <= now)
                    .order_by(Delivery.deliver_at, Delivery.id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            recipients = await recipients_by_id(session, (r.user_id for r in rows))
            for row in rows:
                row.status, row.requested_at = "requested", now
                recipient = recipients.get(row.user_id)
                row.chat_id = recipient.telegram_id if recipient else row.chat_id
                await add_event(
                    session, _requested(row.id, row.user_id, recipient, row.template, row.params, row.dedup_key)
                )
                sent.append(row.id)
        if len(rows) < batch_size:
            return sent


async def mark_delivered(session: AsyncSession, event: NotificationDelivered, at: datetime) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id == event.notification_id, Delivery.status.in_(("requested", "failed")))
        .values(
            status="delivered", delivered_at=at, chat_id=event.chat_id, telegram_message_id=event.telegram_message_id
        )
    )


async def mark_failed(session: AsyncSession, event: NotificationFailed, at: datetime) -> None:
    """A failure never undoes a delivery the bot reported (a retry that succeeded, reported out of order)."""
    reason = f"{event.reason} (permanent)" if event.permanent else event.reason
    await session.execute(
        update(Delivery)
        .where(Delivery.id == event.notification_id, Delivery.status == "requested")
        .values(status="failed", failed_at=at, reason=reason[:500])
    )


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))
