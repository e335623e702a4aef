"""Lesson reminders: planned on ``lesson.scheduled``, moved on ``lesson.rescheduled``, withdrawn on
``lesson.cancelled``; the scheduler answers "what is due at ``now``" with one ``notification.requested``
per reminder.

Safe with any number of instances and restarts: a pass locks the rows it takes with
``FOR UPDATE SKIP LOCKED`` and marks them in the transaction that adds their outbox rows, so another
instance skips what this one holds and never sees it again once committed; a crash before the commit
leaves them to the next pass. A reminder whose lesson has already begun is dropped (and logged).

Preferences apply when a reminder falls due: inside the recipient's quiet hours it is postponed to their end
if that is still before the lesson starts, otherwise dropped; a recipient who switched reminders off gets it
recorded as suppressed. Every outcome is a row of the delivery log (``domain.delivery``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.domain.delivery import Decision, decide, parents_of, recipients_by_id, record
from services.notification_service.models import Recipient, Reminder
from shared.db import Database
from shared.events.catalogue import LessonRescheduled, LessonScheduled

log = logging.getLogger(__name__)

TEMPLATE = "lesson_reminder"
KIND = "lesson_reminder"


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
    facts = _facts(lesson)
    for user_id in recipients:
        await _arm(session, facts, user_id, offsets[user_id], now=now)


async def replan_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, default_offsets: Sequence[int], now: datetime
) -> None:
    """The user's offsets (just changed) applied to their lessons still ahead, those with a reminder pending
    for them: a pending reminder at an offset no longer chosen is withdrawn, one at an offset still chosen
    is left as it is (a postponement by quiet hours included), and a newly chosen offset not yet past at
    ``now`` is armed (over a reminder withdrawn earlier at that offset, never over one sent)."""
    [offsets] = (await _offsets(session, [user_id], default_offsets)).values()
    pending = list(
        await session.scalars(
            select(Reminder).where(Reminder.user_id == user_id, Reminder.status == "pending", Reminder.starts_at > now)
        )
    )
    dropped = [reminder.id for reminder in pending if reminder.offset_minutes not in offsets]
    if dropped:
        await session.execute(update(Reminder).where(Reminder.id.in_(dropped)).values(status="withdrawn"))
    for facts in {reminder.lesson_id: _facts(reminder) for reminder in pending}.values():
        await _arm(session, facts, user_id, offsets, now=now, replacing="withdrawn")


@dataclass(frozen=True)
class _Lesson:
    """What a reminder repeats of its lesson, from the lesson's event or from another reminder of it."""

    lesson_id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    subject: str
    topic: str | None
    starts_at: datetime


def _facts(source: LessonScheduled | LessonRescheduled | Reminder) -> _Lesson:
    return _Lesson(*(getattr(source, field.name) for field in fields(_Lesson)))


async def _arm(
    session: AsyncSession,
    lesson: _Lesson,
    user_id: uuid.UUID,
    offsets: Sequence[int],
    *,
    now: datetime,
    replacing: str | None = None,
) -> None:
    """A pending reminder per offset not yet past, over the lesson's reminder at that offset whatever its
    status (the lesson moved: a new time, a new reminder), or, with ``replacing``, only over one in that
    status (any other stays as it is)."""
    for minutes in offsets:
        due_at = lesson.starts_at - timedelta(minutes=minutes)
        if due_at < now:
            continue
        values = {
            **asdict(lesson),
            "user_id": user_id,
            "offset_minutes": minutes,
            "due_at": due_at,
            "status": "pending",
            "notification_id": None,
            "sent_at": None,
            "reason": None,
        }
        statement = insert(Reminder).values(id=uuid.uuid4(), **values)
        await session.execute(
            statement.on_conflict_do_update(
                constraint="uq_reminders_lesson_user_offset",
                set_=values,
                where=None if replacing is None else Reminder.status == replacing,
            )
        )


async def withdraw_lesson(session: AsyncSession, lesson_id: uuid.UUID) -> None:
    await session.execute(
        update(Reminder).where(Reminder.lesson_id == lesson_id, Reminder.status == "pending").values(status="withdrawn")
    )


def _params(reminder: Reminder) -> dict[str, object]:
    return {
        "lesson_id": reminder.lesson_id,
        "student_id": reminder.student_id,
        "subject": reminder.subject,
        "topic": reminder.topic,
        "starts_at": reminder.starts_at,
        "minutes_before": reminder.offset_minutes,
        "for_parent": reminder.user_id != reminder.student_id,
    }


def dedup_key(reminder: Reminder) -> str:
    # the lesson's time is in the key: a moved lesson is reminded again
    return (
        f"{TEMPLATE}:{reminder.lesson_id}:{reminder.user_id}:{reminder.offset_minutes}:{reminder.starts_at.isoformat()}"
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
            recipients = await recipients_by_id(session, (r.user_id for r in rows))
            for reminder in rows:
                recipient = recipients.get(reminder.user_id)
                if reminder.starts_at <= now:
                    decision = Decision("dropped", reason="the lesson has begun")
                else:
                    decision = decide(recipient, KIND, now, deadline=reminder.starts_at)
                if decision.status == "deferred":  # quiet hours: at their end, still before the lesson
                    reminder.due_at, reminder.reason = decision.deliver_at, "postponed: quiet hours"
                    continue
                notification_id = await record(
                    session,
                    user_id=reminder.user_id,
                    recipient=recipient,
                    kind=KIND,
                    template=TEMPLATE,
                    params=_params(reminder),
                    dedup_key=dedup_key(reminder),
                    decision=decision,
                    now=now,
                )
                reminder.notification_id = notification_id
                reminder.reason = decision.reason
                if decision.status == "requested":
                    reminder.status, reminder.sent_at = "sent", now
                    sent.append(reminder.id)
                else:
                    reminder.status = decision.status  # dropped or suppressed
                    log.info(
                        "reminder %s: %s",
                        decision.status,
                        decision.reason,
                        extra={"reminder_id": str(reminder.id), "lesson_id": str(reminder.lesson_id)},
                    )
        if len(rows) < batch_size:
            return sent
