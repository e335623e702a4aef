"""From one envelope to the facts it contributes to the read models: a pure function, no I/O.

Every fact is keyed by the id of what it describes and carries the envelope's ``occurred_at``
and ``event_id``; the store merges facts so that the latest observation wins (ties by
``event_id``). Merging is commutative, so the read models are the same whatever order the
events arrive in, and a duplicate changes nothing: the incremental path (one event at a time
through the inbox) and a rebuild from ``event_log`` give identical tables.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.events.catalogue import (
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkOverdue,
    HomeworkSubmitted,
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    LessonScheduled,
    PaymentCharged,
    PaymentReceived,
    PaymentRefunded,
    StudentAchievementUnlocked,
    StudentXpAwarded,
    UserRegistered,
    UserUpdated,
    payload_as,
)
from shared.events.envelope import Envelope


@dataclass(frozen=True)
class Observed:
    """When a fact was observed: the envelope's time and id (the tie-breaker)."""

    at: datetime
    event_id: uuid.UUID


@dataclass(frozen=True)
class UserTimezone:
    user_id: uuid.UUID
    timezone: str
    seen: Observed


@dataclass(frozen=True)
class LessonState:
    lesson_id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    starts_at: datetime
    subject: str
    topic: str | None
    status: str
    attendance: str | None
    grade: int | None
    mastery: str | None
    seen: Observed


@dataclass(frozen=True)
class MoneyEntry:
    entry_id: uuid.UUID
    kind: str  # charge, charge_refund, top_up, top_up_refund
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    amount: int
    currency: str
    lesson_id: uuid.UUID | None
    occurred_at: datetime


@dataclass(frozen=True)
class Balance:
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    balance: int
    currency: str
    seen: Observed


@dataclass(frozen=True)
class HomeworkState:
    homework_id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    due_at: datetime
    submitted_at: datetime | None = None
    grade: int | None = None
    graded: Observed | None = None


@dataclass(frozen=True)
class GameEntry:
    event_id: uuid.UUID
    kind: str  # xp, achievement
    student_id: uuid.UUID
    tutor_id: uuid.UUID | None
    amount: int
    occurred_at: datetime


Fact = UserTimezone | LessonState | MoneyEntry | Balance | HomeworkState | GameEntry

LESSON_STATUS = {
    LessonScheduled.event_type: "scheduled",
    LessonRescheduled.event_type: "scheduled",
    LessonCancelled.event_type: "cancelled",
    LessonCompleted.event_type: "completed",
    LessonMissed.event_type: "missed",
}
LESSON_MODELS = {
    LessonScheduled.event_type: LessonScheduled,
    LessonRescheduled.event_type: LessonRescheduled,
    LessonCancelled.event_type: LessonCancelled,
    LessonCompleted.event_type: LessonCompleted,
    LessonMissed.event_type: LessonMissed,
}
HOMEWORK_MODELS = {m.event_type: m for m in (HomeworkAssigned, HomeworkSubmitted, HomeworkGraded, HomeworkOverdue)}

# what the service subscribes to: everything project() reads
CONSUMED_TYPES: tuple[str, ...] = (
    UserRegistered.event_type,
    UserUpdated.event_type,
    *LESSON_MODELS,
    *HOMEWORK_MODELS,
    PaymentReceived.event_type,
    PaymentCharged.event_type,
    PaymentRefunded.event_type,
    StudentXpAwarded.event_type,
    StudentAchievementUnlocked.event_type,
)


def project(envelope: Envelope) -> list[Fact]:
    """The facts one event contributes; [] for a type the read models do not use."""
    seen = Observed(envelope.occurred_at, envelope.event_id)
    kind = envelope.event_type
    if kind in (UserRegistered.event_type, UserUpdated.event_type):
        user = payload_as(envelope, UserRegistered if kind == UserRegistered.event_type else UserUpdated)
        return [UserTimezone(user.user_id, user.timezone, seen)]
    if kind in LESSON_MODELS:
        lesson = payload_as(envelope, LESSON_MODELS[kind])
        return [
            LessonState(
                lesson_id=lesson.lesson_id,
                tutor_id=lesson.tutor_id,
                student_id=lesson.student_id,
                starts_at=lesson.starts_at,
                subject=lesson.subject,
                topic=lesson.topic,
                status=LESSON_STATUS[kind],
                attendance=getattr(lesson, "attendance", None),
                grade=getattr(lesson, "grade", None),
                mastery=getattr(lesson, "mastery", None),
                seen=seen,
            )
        ]
    if kind in HOMEWORK_MODELS:
        work = payload_as(envelope, HOMEWORK_MODELS[kind])
        state = HomeworkState(work.homework_id, work.tutor_id, work.student_id, work.due_at)
        if isinstance(work, HomeworkSubmitted):
            state = HomeworkState(work.homework_id, work.tutor_id, work.student_id, work.due_at, work.submitted_at)
        elif isinstance(work, HomeworkGraded):
            # a grade implies the work was handed in; when it is not known, the grade's time stands in
            state = HomeworkState(
                work.homework_id, work.tutor_id, work.student_id, work.due_at, envelope.occurred_at, work.grade, seen
            )
        return [state]
    if kind in (PaymentReceived.event_type, PaymentCharged.event_type, PaymentRefunded.event_type):
        return _money(envelope, seen)
    if kind == StudentXpAwarded.event_type:
        xp = payload_as(envelope, StudentXpAwarded)
        return [GameEntry(envelope.event_id, "xp", xp.student_id, xp.tutor_id, xp.amount, envelope.occurred_at)]
    if kind == StudentAchievementUnlocked.event_type:
        won = payload_as(envelope, StudentAchievementUnlocked)
        return [GameEntry(envelope.event_id, "achievement", won.student_id, won.tutor_id, 1, envelope.occurred_at)]
    return []


def _money(envelope: Envelope, seen: Observed) -> list[Fact]:
    entry: MoneyEntry
    if envelope.event_type == PaymentCharged.event_type:
        charged = payload_as(envelope, PaymentCharged)
        entry = MoneyEntry(
            charged.charge_id,
            "charge",
            charged.tutor_id,
            charged.student_id,
            charged.amount,
            charged.currency,
            charged.lesson_id,
            envelope.occurred_at,
        )
        money = charged
    elif envelope.event_type == PaymentRefunded.event_type:
        refunded = payload_as(envelope, PaymentRefunded)
        # a refund of a charge (an excused cancellation) gives income back; a refunded top-up does not
        kind = "charge_refund" if refunded.charge_id is not None else "top_up_refund"
        entry = MoneyEntry(
            refunded.refund_id,
            kind,
            refunded.tutor_id,
            refunded.student_id,
            refunded.amount,
            refunded.currency,
            None,
            envelope.occurred_at,
        )
        money = refunded
    else:
        received = payload_as(envelope, PaymentReceived)
        entry = MoneyEntry(
            received.payment_id,
            "top_up",
            received.tutor_id,
            received.student_id,
            received.amount,
            received.currency,
            None,
            envelope.occurred_at,
        )
        money = received
    balance = Balance(money.tutor_id, money.student_id, money.balance_after, money.currency, seen)
    return [entry, balance]
