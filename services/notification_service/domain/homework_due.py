"""Homework due tomorrow: "what is due at ``now``", the reminder scheduler's shape. An assignment's notice is
armed on ``homework.assigned`` for 24 h before its deadline (``facts.DUE_NOTICE_BEFORE``) and goes to the
student once, unless it was handed in or graded by then. Rows are claimed ``FOR UPDATE SKIP LOCKED`` and
marked (``due_notified_at``) in the transaction that adds the notification: once with any number of instances
and across restarts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from services.notification_service.domain.delivery import notify
from services.notification_service.models import HomeworkFact
from shared.db import Database

TEMPLATE = "homework_due_tomorrow"


async def emit_homework_due(database: Database, now: datetime, *, batch_size: int = 100) -> list[uuid.UUID]:
    """Tell each student whose open assignment's notice time has come; returns the homework ids handled."""
    done: list[uuid.UUID] = []
    while True:
        async with database.transaction() as session:
            rows = list(
                await session.scalars(
                    select(HomeworkFact)
                    .where(
                        HomeworkFact.due_notified_at.is_(None),
                        HomeworkFact.submitted_at.is_(None),
                        HomeworkFact.graded_at.is_(None),
                        HomeworkFact.due_notice_at <= now,
                    )
                    .order_by(HomeworkFact.due_notice_at, HomeworkFact.homework_id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            for homework in rows:
                homework.due_notified_at = now
                done.append(homework.homework_id)
                if homework.due_at <= now:  # the scheduler was down past the deadline: too late to say
                    continue
                await notify(
                    session,
                    homework.student_id,
                    kind="homework_due",
                    template=TEMPLATE,
                    params={
                        "homework_id": homework.homework_id,
                        "student_id": homework.student_id,
                        "tutor_id": homework.tutor_id,
                        "title": homework.title,
                        "due_at": homework.due_at,
                        "lesson_id": homework.lesson_id,
                    },
                    dedup_key=f"{TEMPLATE}:{homework.homework_id}:{homework.student_id}",
                    now=now,
                    # after the deadline "due tomorrow" is wrong: dropped, not sent late
                    deadline=homework.due_at,
                )
        if len(rows) < batch_size:
            return done
