"""What notification-service consumes. Each handler runs in the consumer's transaction with the inbox
row, so a redelivered or duplicated event has no second effect."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.domain import reminders
from services.notification_service.models import Recipient
from shared.events import EventHandler
from shared.events.catalogue import (
    LessonCancelled,
    LessonRescheduled,
    LessonScheduled,
    UserRegistered,
    UserUpdated,
    payload_as,
)
from shared.events.envelope import Envelope


async def _remember_user(session: AsyncSession, values: dict[str, object]) -> None:
    statement = insert(Recipient).values(**values)
    changes = {k: v for k, v in values.items() if k != "user_id"}
    await session.execute(statement.on_conflict_do_update(index_elements=[Recipient.user_id], set_=changes))


def subscriptions(*, default_offsets: Sequence[int]) -> dict[str, EventHandler]:
    async def on_user_registered(session: AsyncSession, envelope: Envelope) -> None:
        user = payload_as(envelope, UserRegistered)
        await _remember_user(
            session,
            {
                "user_id": user.user_id,
                "role": user.role,
                "full_name": user.full_name,
                "timezone": user.timezone,
                "language": user.language,
                "telegram_id": user.telegram_id,
            },
        )

    async def on_user_updated(session: AsyncSession, envelope: Envelope) -> None:
        user = payload_as(envelope, UserUpdated)
        await _remember_user(
            session,
            {
                "user_id": user.user_id,
                "full_name": user.full_name,
                "timezone": user.timezone,
                "language": user.language,
                "telegram_id": user.telegram_id,
            },
        )

    async def on_lesson_scheduled(session: AsyncSession, envelope: Envelope) -> None:
        await reminders.plan_lesson(
            session,
            payload_as(envelope, LessonScheduled),
            default_offsets=default_offsets,
            now=envelope.occurred_at,
        )

    async def on_lesson_rescheduled(session: AsyncSession, envelope: Envelope) -> None:
        await reminders.plan_lesson(
            session,
            payload_as(envelope, LessonRescheduled),
            default_offsets=default_offsets,
            now=envelope.occurred_at,
        )

    async def on_lesson_cancelled(session: AsyncSession, envelope: Envelope) -> None:
        await reminders.withdraw_lesson(session, payload_as(envelope, LessonCancelled).lesson_id)

    return {
        UserRegistered.event_type: on_user_registered,
        UserUpdated.event_type: on_user_updated,
        LessonScheduled.event_type: on_lesson_scheduled,
        LessonRescheduled.event_type: on_lesson_rescheduled,
        LessonCancelled.event_type: on_lesson_cancelled,
    }
