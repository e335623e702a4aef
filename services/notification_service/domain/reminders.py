"""Lesson reminders: planned on ``lesson.scheduled``, moved on ``lesson.rescheduled``, withdrawn on
``lesson.cancelled``; the scheduler answers "what is due at ``now``" with one ``notification.requested``
per reminder.

Safe with any number of instances and restarts: a pass locks the rows it takes with
``FOR UPDATE SKIP LOCKED`` and marks them in the transaction that adds their outbox rows, so another
instance skips what this one holds and never sees it again once committed; a crash before the commit
leaves them to the next pass. A reminder whose lesson has already begun is dropped (and logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.models import Recipient, Reminder
from shared.db import Database
from shared.events.catalogue import LessonRescheduled, LessonScheduled, NotificationRequested
from shared.events.outbox import add_event
from shared.tables import access_links

log = logging.getLogger(__name__)

TEMPLATE = "lesson_reminder"


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


async def _offsets(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], default: Sequence[int]
) -> dict[uuid.UUID, list[int]]:
    chosen = {
        r.user_id: r.reminder_offsets_minutes
        for r in await session.scalars(select(Recipient).where(Recipient.user_id.in_(user_ids)))
    }
    return {u: sorted(set(chosen.get(u) or default), reverse=True) for u in user_ids}


async def plan_lesson(
    session: AsyncSession,
    lesson: LessonScheduled | LessonRescheduled,
    *,
    default_offsets: Sequence[int],
    now: datetime,
) -> None:
    """Arm (or move) the lesson's reminders for the student and their parents; reminders of the lesson's
    old time that were not sent are withdrawn. An offset already past at ``now`` (the event's time) is
    skipped: a lesson booked three hours ahead gets its 1 h reminder, not a "tomorrow" one."""
    recipients = [lesson.student_id, *await parents_of(session, lesson.student_id)]
    offsets = await _offsets(session, recipients, default_offsets)
    await session.execute(
        update(Reminder)
        .where(Reminder.lesson_id == lesson.lesson_id, Reminder.status == "pending")
        .values(status="withdrawn")
    )
    for user_id in recipients:
        for minutes in offsets[user_id]:
            due_at = lesson.starts_at - timedelta(minutes=minutes)
            if due_at < now:
                continue
            values = {
                "lesson_id": lesson.lesson_id,
                "tutor_id": lesson.tutor_id,
                "student_id": lesson.student_id,
                "user_id": user_id,
                "offset_minutes": minutes,
                "subject": lesson.subject,
                "topic": lesson.topic,
                "starts_at": lesson.starts_at,
                "due_at": due_at,
                "status": "pending",
                "notification_id": None,
                "sent_at": None,
            }
            statement = insert(Reminder).values(id=uuid.uuid4(), **values)
            await session.execute(
                statement.on_conflict_do_update(constraint="uq_reminders_lesson_user_offset", set_=values)
            )


async def withdraw_lesson(session: AsyncSession, lesson_id: uuid.UUID) -> None:
    await session.execute(
        update(Reminder).where(Reminder.lesson_id == lesson_id, Reminder.status == "pending").values(status="withdrawn")
    )


def _local(moment: datetime, timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).isoformat()


def reminder_notification(reminder: Reminder, recipient: Recipient | None) -> NotificationRequested:
    timezone = recipient.timezone if recipient else "UTC"
    return NotificationRequested(
        notification_id=uuid.uuid4(),
        user_id=reminder.user_id,
        chat_id=recipient.telegram_id if recipient else None,
        template=TEMPLATE,
        params={
            "lesson_id": str(reminder.lesson_id),
            "student_id": str(reminder.student_id),
            "subject": reminder.subject,
            "topic": reminder.topic,
            "starts_at": reminder.starts_at.isoformat(),
            "starts_at_local": _local(reminder.starts_at, timezone),
            "timezone": timezone,
            "minutes_before": reminder.offset_minutes,
            "language": recipient.language if recipient else None,
            "for_parent": reminder.user_id != reminder.student_id,
        },
        dedup_key=f"{TEMPLATE}:{reminder.lesson_id}:{reminder.user_id}:{reminder.offset_minutes}"
        f":{reminder.starts_at.isoformat()}",
    )


async def emit_due(database: Database, now: datetime, *, batch_size: int = 100) -> list[uuid.UUID]:
    """Send the reminders due at ``now`` (pending, due time passed): one ``notification.requested`` each,
    the reminder marked sent in the same transaction; one whose lesson has begun is dropped. Returns the
    ids of the reminders sent. Loops over batches until nothing is left."""
    sent: list[uuid.UUID] = []
    while True:
        async with database.transaction() as session:
            statement = (
                select(Reminder)
                .where(Reminder.status == "pending", Reminder.due_at <= now)
                .order_by(Reminder.due_at, Reminder.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = list(await session.scalars(statement))
            users = {r.user_id for r in rows}
            recipients = (
                {r.user_id: r for r in await session.scalars(select(Recipient).where(Recipient.user_id.in_(users)))}
                if users
                else {}
            )
            for reminder in rows:
                if reminder.starts_at <= now:
                    reminder.status = "dropped"
                    log.info(
                        "reminder dropped: the lesson has begun",
                        extra={"reminder_id": str(reminder.id), "lesson_id": str(reminder.lesson_id)},
                    )
                    continue
                notification = reminder_notification(reminder, recipients.get(reminder.user_id))
                reminder.status = "sent"
                reminder.sent_at = now
                reminder.notification_id = notification.notification_id
                await add_event(session, notification)
                sent.append(reminder.id)
        if len(rows) < batch_size:
            return sent


async def _loop(app: FastAPI, interval: float, batch_size: int) -> None:
    while True:
        try:
            sent = await emit_due(app.state.db, app.state.clock.now(), batch_size=batch_size)
            if sent:
                log.info("reminders sent", extra={"count": len(sent)})
        except Exception:  # a database outage: try again next time
            log.exception("reminder pass failed")
        await asyncio.sleep(interval)


async def start_scheduler(app: FastAPI) -> None:
    settings = app.state.settings
    app.state.reminder_task = None
    if settings.reminder_interval_seconds > 0:
        app.state.reminder_task = asyncio.create_task(
            _loop(app, settings.reminder_interval_seconds, settings.reminder_batch_size),
            name="notification-reminders",
        )


async def stop_scheduler(app: FastAPI) -> None:
    task: asyncio.Task[None] | None = getattr(app.state, "reminder_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
