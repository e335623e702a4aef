"""What notification-service consumes. Each handler runs in the consumer's transaction with the inbox
row, so a redelivered or duplicated event has no second effect."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.domain import delivery, facts, notices, reminders
from services.notification_service.models import Recipient
from shared.clock import Clock
from shared.events import EventHandler
from shared.events.catalogue import (
    BalanceLow,
    EventPayload,
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkSubmitted,
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    LessonScheduled,
    NotificationDelivered,
    NotificationFailed,
    PaymentReceived,
    StudentAchievementUnlocked,
    StudentLevelUp,
    UserRegistered,
    UserUpdated,
    payload_as,
)
from shared.events.envelope import Envelope


async def _remember_user(session: AsyncSession, values: dict[str, object]) -> None:
    statement = insert(Recipient).values(**values)
    changes = {k: v for k, v in values.items() if k != "user_id"}
    await session.execute(statement.on_conflict_do_update(index_elements=[Recipient.user_id], set_=changes))


def subscriptions(*, default_offsets: Sequence[int], clock: Clock) -> dict[str, EventHandler]:
    """Handlers by event type. Quiet hours are judged by ``clock`` (when the notification would go out), a
    lesson's own timing by the event's ``occurred_at``."""

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
        lesson = payload_as(envelope, LessonScheduled)
        await reminders.plan_lesson(session, lesson, default_offsets=default_offsets, now=envelope.occurred_at)
        await notices.lesson_scheduled(session, lesson, now=clock.now(), at=envelope.occurred_at)

    async def on_lesson_rescheduled(session: AsyncSession, envelope: Envelope) -> None:
        lesson = payload_as(envelope, LessonRescheduled)
        await reminders.plan_lesson(session, lesson, default_offsets=default_offsets, now=envelope.occurred_at)
        await notices.lesson_rescheduled(session, lesson, now=clock.now())

    async def on_lesson_cancelled(session: AsyncSession, envelope: Envelope) -> None:
        lesson = payload_as(envelope, LessonCancelled)
        await reminders.withdraw_lesson(session, lesson.lesson_id)
        await notices.lesson_cancelled(session, lesson, now=clock.now())

    async def on_lesson_completed(session: AsyncSession, envelope: Envelope) -> None:
        lesson = payload_as(envelope, LessonCompleted)
        await facts.lesson_outcome(session, lesson)
        await notices.lesson_report(session, lesson, now=clock.now())

    async def on_lesson_missed(session: AsyncSession, envelope: Envelope) -> None:
        lesson = payload_as(envelope, LessonMissed)
        await facts.lesson_outcome(session, lesson)
        await notices.lesson_report(session, lesson, now=clock.now())

    async def on_homework_assigned(session: AsyncSession, envelope: Envelope) -> None:
        homework = payload_as(envelope, HomeworkAssigned)
        await facts.homework_assigned(session, homework, envelope.occurred_at)
        await notices.homework_assigned(session, homework, now=clock.now())

    async def on_homework_submitted(session: AsyncSession, envelope: Envelope) -> None:
        homework = payload_as(envelope, HomeworkSubmitted)
        await facts.homework_submitted(session, homework)
        await notices.homework_submitted(session, homework, now=clock.now())

    async def on_homework_graded(session: AsyncSession, envelope: Envelope) -> None:
        homework = payload_as(envelope, HomeworkGraded)
        await facts.homework_graded(session, homework, envelope.occurred_at)
        await notices.homework_graded(session, homework, now=clock.now())

    async def on_payment_received(session: AsyncSession, envelope: Envelope) -> None:
        payment = payload_as(envelope, PaymentReceived)
        await facts.payment_received(session, payment, envelope.occurred_at)
        await notices.payment_received(session, payment, now=clock.now())

    async def on_balance_low(session: AsyncSession, envelope: Envelope) -> None:
        balance = payload_as(envelope, BalanceLow)
        await notices.balance_low(session, balance, event_id=envelope.event_id, now=clock.now())

    async def on_level_up(session: AsyncSession, envelope: Envelope) -> None:
        await notices.level_up(session, payload_as(envelope, StudentLevelUp), now=clock.now())

    async def on_achievement_unlocked(session: AsyncSession, envelope: Envelope) -> None:
        await notices.achievement_unlocked(session, payload_as(envelope, StudentAchievementUnlocked), now=clock.now())

    async def on_notification_delivered(session: AsyncSession, envelope: Envelope) -> None:
        await delivery.mark_delivered(session, payload_as(envelope, NotificationDelivered), envelope.occurred_at)

    async def on_notification_failed(session: AsyncSession, envelope: Envelope) -> None:
        await delivery.mark_failed(session, payload_as(envelope, NotificationFailed), envelope.occurred_at)

    handlers: list[tuple[type[EventPayload], EventHandler]] = [
        (UserRegistered, on_user_registered),
        (UserUpdated, on_user_updated),
        (LessonScheduled, on_lesson_scheduled),
        (LessonRescheduled, on_lesson_rescheduled),
        (LessonCancelled, on_lesson_cancelled),
        (LessonCompleted, on_lesson_completed),
        (LessonMissed, on_lesson_missed),
        (HomeworkAssigned, on_homework_assigned),
        (HomeworkSubmitted, on_homework_submitted),
        (HomeworkGraded, on_homework_graded),
        (PaymentReceived, on_payment_received),
        (BalanceLow, on_balance_low),
        (StudentLevelUp, on_level_up),
        (StudentAchievementUnlocked, on_achievement_unlocked),
        (NotificationDelivered, on_notification_delivered),
        (NotificationFailed, on_notification_failed),
    ]
    return {model.event_type: handler for model, handler in handlers}
