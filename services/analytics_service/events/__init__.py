"""What analytics-service consumes: every event its read models use (``projection.CONSUMED_TYPES``).

Each handler runs in the consumer's transaction together with the inbox row: the envelope is
kept in ``event_log`` and its facts merged into the read models; a duplicate has no effect. The
business metrics move only after that transaction commits.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics_service.domain import store
from services.analytics_service.domain.projection import CONSUMED_TYPES, GameEntry, LessonState, MoneyEntry
from services.analytics_service.metrics import Metrics
from services.analytics_service.models import LessonFact
from shared.db import after_commit
from shared.events import EventHandler
from shared.events.envelope import Envelope

ACTIVE_WINDOW = timedelta(days=30)


def subscriptions(metrics: Metrics) -> dict[str, EventHandler]:
    async def on_event(session: AsyncSession, envelope: Envelope) -> None:
        facts = await store.consume(session, envelope)
        # counted once the transaction commits: a rolled-back attempt is redelivered and would count twice
        for fact in facts:
            if isinstance(fact, LessonState) and fact.status == "completed":
                active = await _active_students(session, envelope)
                after_commit(session, metrics.lesson_completed)
                after_commit(session, partial(metrics.active_students, active))
            elif isinstance(fact, MoneyEntry):
                after_commit(session, partial(metrics.money, fact))
            elif isinstance(fact, GameEntry):
                after_commit(session, partial(metrics.game, fact))

    return dict.fromkeys(CONSUMED_TYPES, on_event)


async def _active_students(session: AsyncSession, envelope: Envelope) -> int:
    """Students with a completed lesson in the 30 days before this event (the whole practice)."""
    since = envelope.occurred_at - ACTIVE_WINDOW
    found = await session.scalar(
        select(func.count(func.distinct(LessonFact.student_id))).where(
            LessonFact.status == "completed", LessonFact.starts_at >= since
        )
    )
    return int(found or 0)
