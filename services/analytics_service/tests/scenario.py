"""A tutor's month as the events other services would publish, in the order they happened.

Deterministic for a seed; ids are fresh per call so tests sharing a database stay apart.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.events.catalogue import (
    EventPayload,
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkSubmitted,
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonScheduled,
    PaymentCharged,
    PaymentReceived,
    PaymentRefunded,
    StudentAchievementUnlocked,
    StudentXpAwarded,
    UserRegistered,
    UserUpdated,
)
from shared.events.envelope import Envelope

PRICE = 150_000
START = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)


@dataclass
class Practice:
    tutor_id: uuid.UUID
    student_ids: list[uuid.UUID]
    timezone: str
    events: list[Envelope] = field(default_factory=list)
    charged: int = 0  # what payment-service's ledger charged, net of charges given back
    now: datetime = START

    def emit(self, payload: EventPayload, producer: str) -> Envelope:
        self.now += timedelta(minutes=7)
        envelope = Envelope.wrap(payload, producer=producer, correlation_id=str(uuid.uuid4()), occurred_at=self.now)
        self.events.append(envelope)
        return envelope


def practice(seed: int = 1, *, students: int = 3, lessons: int = 24, timezone: str = "Asia/Vladivostok") -> Practice:
    rng = random.Random(seed)
    p = Practice(uuid.uuid4(), [uuid.uuid4() for _ in range(students)], timezone)
    p.emit(UserRegistered(user_id=p.tutor_id, role="tutor", full_name="T", timezone="UTC", language="ru"), "user")
    p.emit(UserUpdated(user_id=p.tutor_id, full_name="T", timezone=timezone, language="ru"), "user")
    balances = dict.fromkeys(p.student_ids, 0)

    def money(student: uuid.UUID, delta: int) -> int:
        balances[student] += delta
        return balances[student]

    for student in p.student_ids:
        p.emit(
            UserRegistered(
                user_id=student,
                role="student",
                full_name="S",
                timezone="Europe/Moscow",
                language="ru",
                tutor_id=p.tutor_id,
            ),
            "user",
        )
        amount = PRICE * rng.randint(1, 4)
        p.emit(
            PaymentReceived(
                student_id=student,
                tutor_id=p.tutor_id,
                amount=amount,
                currency="RUB",
                balance_after=money(student, amount),
                payment_id=uuid.uuid4(),
                method="cash",
            ),
            "payment",
        )
    for n in range(lessons):
        student = rng.choice(p.student_ids)
        starts = START + timedelta(days=n, hours=rng.choice([0, 8, 15]))  # some land on the next local day
        lesson = {
            "lesson_id": uuid.uuid4(),
            "tutor_id": p.tutor_id,
            "student_id": student,
            "starts_at": starts,
            "ends_at": starts + timedelta(hours=1),
            "subject": "maths",
            "topic": f"topic {n % 5}",
        }
        p.emit(LessonScheduled(**lesson), "lesson")
        outcome = rng.choice(["completed", "completed", "completed", "missed", "cancelled", "late", "excused"])
        if outcome == "completed":
            p.emit(
                LessonCompleted(**lesson, grade=rng.randint(3, 5), mastery=rng.choice(["learned", "mastered"])),
                "lesson",
            )
        elif outcome == "missed":
            p.emit(LessonMissed(**lesson), "lesson")
        else:
            p.emit(
                LessonCancelled(
                    **lesson, cancelled_by=student, cancelled_by_role="student", chargeable=outcome != "cancelled"
                ),
                "lesson",
            )
        if outcome in ("completed", "missed", "late", "excused"):
            charge_id = uuid.uuid4()
            p.emit(
                PaymentCharged(
                    student_id=student,
                    tutor_id=p.tutor_id,
                    amount=PRICE,
                    currency="RUB",
                    balance_after=money(student, -PRICE),
                    charge_id=charge_id,
                    lesson_id=lesson["lesson_id"],
                ),
                "payment",
            )
            p.charged += PRICE
            if outcome == "excused":
                p.emit(
                    LessonCancelled(
                        **lesson,
                        cancelled_by=student,
                        cancelled_by_role="student",
                        chargeable=False,
                        excused_by=p.tutor_id,
                    ),
                    "lesson",
                )
                p.emit(
                    PaymentRefunded(
                        student_id=student,
                        tutor_id=p.tutor_id,
                        amount=PRICE,
                        currency="RUB",
                        balance_after=money(student, PRICE),
                        refund_id=uuid.uuid4(),
                        charge_id=charge_id,
                        reason="excused",
                    ),
                    "payment",
                )
                p.charged -= PRICE
        if outcome == "completed":
            p.emit(
                StudentXpAwarded(
                    student_id=student, tutor_id=p.tutor_id, amount=150, source="lesson", total_xp=150 * (n + 1)
                ),
                "student",
            )
        if n % 3 == 0:
            work = {
                "homework_id": uuid.uuid4(),
                "tutor_id": p.tutor_id,
                "student_id": student,
                "title": f"hw {n}",
                "due_at": starts + timedelta(days=2),
            }
            p.emit(HomeworkAssigned(**work), "homework")
            if rng.random() < 0.7:
                p.emit(HomeworkSubmitted(**work, submission_id=uuid.uuid4(), submitted_at=p.now), "homework")
                p.emit(HomeworkGraded(**work, grade=rng.randint(2, 4)), "homework")
                p.emit(HomeworkGraded(**work, grade=rng.randint(4, 5)), "homework")  # graded again: this one stands
    p.emit(
        StudentAchievementUnlocked(
            student_id=p.student_ids[0], tutor_id=p.tutor_id, code="first_lesson", rarity="common"
        ),
        "student",
    )
    return p


def shuffled_with_duplicates(events: list[Envelope], seed: int, share: float = 0.1) -> list[Envelope]:
    """The same envelopes in a random order, with about ``share`` of them delivered twice."""
    rng = random.Random(seed)
    delivered = events + rng.sample(events, max(1, round(len(events) * share)))
    rng.shuffle(delivered)
    return delivered
