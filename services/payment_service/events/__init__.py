"""What payment-service consumes (lesson events) and publishes (through the outbox).

Each handler runs in the consumer's transaction, together with the inbox row, so a
redelivered or duplicated event has no second effect; a lesson is charged at most once
whichever event or instance comes first (the account lock plus the unique index on
``ledger_entries.lesson_id``). The handlers of lessons that are over take every such event
the consumer has waiting at once (``charges.lessons_ended``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain import charges
from shared.events import EventHandler
from shared.events.catalogue import (
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    LessonScheduled,
    payload_as,
)
from shared.events.envelope import Envelope
from shared.events.handlers import batch_handler


def subscriptions(*, default_currency: str) -> dict[str, EventHandler]:
    """The lesson events payment-service handles; a new balance starts in ``default_currency``."""

    async def on_lesson_scheduled(session: AsyncSession, envelope: Envelope) -> None:
        lesson = payload_as(envelope, LessonScheduled)
        await charges.lesson_planned(session, lesson, envelope, default_currency=default_currency)

    async def on_lesson_rescheduled(session: AsyncSession, envelope: Envelope) -> None:
        lesson = payload_as(envelope, LessonRescheduled)
        await charges.lesson_planned(session, lesson, envelope, default_currency=default_currency)

    @batch_handler
    async def on_lesson_cancelled(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        ended = [(payload_as(envelope, LessonCancelled), envelope) for envelope in envelopes]
        await charges.lessons_ended(session, ended, status="cancelled")

    @batch_handler
    async def on_lesson_completed(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        ended = [(payload_as(envelope, LessonCompleted), envelope) for envelope in envelopes]
        await charges.lessons_ended(session, ended, status="completed")

    @batch_handler
    async def on_lesson_missed(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        ended = [(payload_as(envelope, LessonMissed), envelope) for envelope in envelopes]
        await charges.lessons_ended(session, ended, status="missed")

    return {
        LessonScheduled.event_type: on_lesson_scheduled,
        LessonRescheduled.event_type: on_lesson_rescheduled,
        LessonCancelled.event_type: on_lesson_cancelled,
        LessonCompleted.event_type: on_lesson_completed,
        LessonMissed.event_type: on_lesson_missed,
    }
