"""A backlog of completions committed at once: the same code as ``POST .../complete``, minus HTTP.

For the sustained rate the producer must not be what limits it (lesson-service's HTTP
handling is the capacity benchmark's business), so the harness runs the endpoint's own
steps — ``lessons.lock_lesson_snapshot``, ``lessons.complete``, ``add_event(lesson_completed(...))``,
``announce_reflowed`` — for every lesson in ONE transaction on lesson-service's
database, exactly as a burst of requests would leave them, and notes when it
committed. The relay is woken by that commit's NOTIFY and drains the outbox in its
batches; the broker and the consumers take it from there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from benchmarks.common.seed import GRADE
from services.lesson_service.domain import lessons
from services.lesson_service.events import announce_reflowed, lesson_completed
from shared.db import Database
from shared.events.outbox import add_event

SERVICE = "lesson-service"


async def commit_completions(lesson_database_url: str, lesson_ids: Sequence[str]) -> float:
    """Complete every lesson in one transaction; returns the wall-clock time the commit returned."""
    db = Database(lesson_database_url, service=SERVICE, pool_size=1, max_overflow=0)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            for lesson_id in lesson_ids:
                lesson = await lessons.complete(
                    session,
                    await lessons.lock_lesson_snapshot(session, uuid.UUID(lesson_id)),
                    now=now,
                    attendance="present",
                    grade=GRADE,
                    topic=None,
                    mastery=None,
                    mastery_comment=None,
                    skills=[],
                    notes=None,
                )
                await add_event(session, lesson_completed(lesson))
                await announce_reflowed(session)
        return time.time()
    finally:
        await db.dispose()
