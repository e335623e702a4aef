"""Completed lessons applied in batches leave exactly what applying them one at a time leaves.

``on_lesson_completed`` is a batch handler: the consumer hands it every completed lesson it has waiting
and it applies them with one statement each for the locks, standings, ledger, days and achievements
(docs/performance.md). The same month of events — lessons present, late and absent, graded and not,
the same lesson sent twice, one already awarded, days missed and bridged by freezes or by the tutor's
cancellations, a student in another time zone, a profile created by its first lesson, a homework and
a material in between — is applied to two worlds with their own ids: one event per transaction, and in
batches of several sizes, through the consumer's own path. Profiles, ledger, achievements, study days
and the events added (in order, each pointing back at its cause) must be the same.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.student_service.events import SUBSCRIPTIONS
from services.student_service.models import Achievement, Profile, StudyDay, XpEntry
from services.student_service.tests.conftest import NOW
from shared.db import Database
from shared.events.catalogue import (
    EventPayload,
    HomeworkGraded,
    LessonCancelled,
    LessonCompleted,
    MaterialViewed,
    UserRegistered,
)
from shared.events.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.tables import outbox_events
from shared.testing.naming import named

STUDENTS = 4


@dataclass
class World:
    """One copy of the scenario's people and lessons, with ids of its own; ``names`` maps each id back."""

    students: list[uuid.UUID] = field(default_factory=lambda: [uuid.uuid4() for _ in range(STUDENTS)])
    tutor: uuid.UUID = field(default_factory=uuid.uuid4)
    lessons: dict[int, uuid.UUID] = field(default_factory=dict)
    events: list[Envelope] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names[str(self.tutor)] = "tutor"
        self.names.update({str(s): f"student{n}" for n, s in enumerate(self.students)})

    def lesson_id(self, number: int) -> uuid.UUID:
        if number not in self.lessons:
            self.lessons[number] = uuid.uuid4()
            self.names[str(self.lessons[number])] = f"lesson{number}"
        return self.lessons[number]

    def event(self, payload: EventPayload, days: float) -> Envelope:
        envelope = Envelope.wrap(
            payload, producer="test", correlation_id=f"event{len(self.events)}", occurred_at=NOW + timedelta(days=days)
        )
        self.names[str(envelope.event_id)] = f"event{len(self.events)}"
        self.events.append(envelope)
        return envelope

    def named(self, value: Any) -> Any:
        """``value`` with every id of this world replaced by its name, for comparing two worlds."""
        return named(value, self.names)


def _month(world: World) -> tuple[list[Envelope], list[Envelope]]:
    """The history (applied one at a time in both worlds) and the month under test, from one fixed plan."""
    plan = random.Random(20261126)
    tutor = world.tutor

    def completed(student: int, number: int, days: float, **fields: Any) -> Envelope:
        starts = NOW + timedelta(days=days, hours=-1)
        lesson = LessonCompleted(
            lesson_id=world.lesson_id(number), tutor_id=tutor, student_id=world.students[student],
            starts_at=starts, ends_at=starts + timedelta(hours=1), subject="Maths", topic=f"topic {number}",
            **fields,
        )  # fmt: skip
        return world.event(lesson, days)

    history = [
        # student 2 studies in Vladivostok (UTC+10): its days fall differently
        world.event(
            UserRegistered(
                user_id=world.students[2],
                role="student",
                full_name="Vlad",
                timezone="Asia/Vladivostok",
                language="ru",
                tutor_id=tutor,
            ),
            -30,
        ),  # fmt: skip
        # the tutor cancelled student 1's lessons of days 6 and 7: those days do not break a streak
        *(
            world.event(
                LessonCancelled(
                    lesson_id=world.lesson_id(900 + d),
                    tutor_id=tutor,
                    student_id=world.students[1],
                    starts_at=NOW + timedelta(days=d),
                    ends_at=NOW + timedelta(days=d, hours=1),
                    subject="Maths",
                    cancelled_by=tutor,
                    cancelled_by_role="tutor",
                ),
                d - 2,
            )
            for d in (6, 7)
        ),  # fmt: skip
        # student 0 has 48 lessons behind it (the 50-lesson achievement is two away), one of them number 1000
        *(completed(0, 1000 + n, -48 + n, grade=5) for n in range(48)),  # daily, up to the month: 2 freezes held
    ]
    month: list[Envelope] = []
    number = 0
    for day in range(28):
        for student in range(STUDENTS - 1):  # student 3 has no profile until its first lesson
            if plan.random() < 0.25:
                continue  # a day missed
            number += 1
            attendance = plan.choice(["present", "present", "present", "late", "absent"])
            grade = plan.choice([None, 3, 4, 5, 5])
            lesson_type = plan.choice(["regular", "regular", "trial", "exam_prep"])
            month.append(
                completed(student, number, day + plan.random() / 2, attendance=attendance, grade=grade,
                          lesson_type=lesson_type)
            )  # fmt: skip
            if plan.random() < 0.08:
                month.append(completed(student, number, day + 0.6, attendance=attendance, grade=grade))  # sent twice
        if day == 9:
            month.append(completed(0, 1000, day + 0.1, grade=5))  # awarded in the history already
            homework = HomeworkGraded(
                homework_id=world.lesson_id(500), tutor_id=tutor, student_id=world.students[1], title="Essay",
                due_at=NOW + timedelta(days=day), grade=5,
            )  # fmt: skip
            month.append(world.event(homework, day + 0.2))
            viewed = MaterialViewed(
                material_id=world.lesson_id(600), owner_id=tutor, viewer_id=world.students[1], viewer_role="student"
            )
            month.append(world.event(viewed, day + 0.3))
        if day in (12, 20):
            month.append(completed(3, 700 + day, day + 0.4, grade=4))
    return history, month


async def _apply(database: Database, events: Sequence[Envelope], batch_sizes: Sequence[int]) -> None:
    """Through the consumer's own transaction (inbox rows, runs for batch handlers), ``batch_sizes`` at a
    time in turn (cycled); the private entry point is what its worker calls with the deliveries it took."""
    consumer = EventConsumer(database, None, service="student-service", handlers=SUBSCRIPTIONS)  # type: ignore[arg-type]
    start, turn = 0, 0
    while start < len(events):
        size = batch_sizes[turn % len(batch_sizes)]
        await consumer._apply_in_one_transaction(events[start : start + size])
        start, turn = start + size, turn + 1


async def _state(database: Database, world: World) -> dict[str, Any]:
    students = world.students
    async with database.transaction() as session:
        profiles = {
            str(p.student_id): [
                p.tutor_id, p.xp, p.level, p.current_streak, p.longest_streak, p.freezes_held, p.timezone,
                p.last_lesson_id, p.last_lesson_at, p.last_lesson_topic,
            ]
            for p in (await session.execute(select(Profile).where(Profile.student_id.in_(students)))).scalars()
        }  # fmt: skip
        ledger = list(
            tuple(row)
            for row in await session.execute(
                select(XpEntry.student_id, XpEntry.source_key, XpEntry.amount, XpEntry.source, XpEntry.grade,
                       XpEntry.occurred_at, XpEntry.source_event_id).where(XpEntry.student_id.in_(students))
            )
        )  # fmt: skip
        unlocked = list(
            tuple(row)
            for row in await session.execute(
                select(Achievement.student_id, Achievement.code, Achievement.unlocked_at).where(
                    Achievement.student_id.in_(students)
                )
            )
        )
        days = list(
            tuple(row)
            for row in await session.execute(
                select(StudyDay.student_id, StudyDay.day).where(StudyDay.student_id.in_(students))
            )
        )
        causes = [str(e.event_id) for e in world.events]
        added = [
            {"type": event_type, "cause": envelope["causation_id"], "correlation": envelope["correlation_id"],
             "payload": envelope["payload"]}
            for event_type, envelope in await session.execute(
                select(outbox_events.c.event_type, outbox_events.c.envelope)
                .where(outbox_events.c.envelope["causation_id"].astext.in_(causes))
                .order_by(outbox_events.c.created_at)
            )
        ]  # fmt: skip
    named = world.named({"profiles": profiles, "ledger": ledger, "unlocked": unlocked, "days": days, "added": added})
    for rows in ("ledger", "unlocked", "days"):  # in an order that does not depend on the world's ids
        named[rows].sort()
    return named


@pytest.mark.parametrize("batch_sizes", [(50,), (7, 1, 13), (1000,)], ids=["batches-of-50", "mixed", "all-at-once"])
async def test_a_month_applied_in_batches_leaves_what_one_at_a_time_leaves(
    database: Database, batch_sizes: tuple[int, ...]
) -> None:
    one_at_a_time, batched = World(), World()
    for world, sizes in ((one_at_a_time, (1,)), (batched, batch_sizes)):
        history, month = _month(world)
        await _apply(database, history, (1,))
        await _apply(database, month, sizes)

    expected = await _state(database, one_at_a_time)
    assert await _state(database, batched) == expected

    # the month is worth comparing: it reached what the rules reward and punish
    unlocked = {(student, code) for student, code, _ in expected["unlocked"]}
    assert {("student0", "lessons_50"), ("student0", "streak_7"), ("student3", "first_lesson")} <= unlocked
    assert {("student1", "first_homework"), ("student1", "first_material")} <= unlocked
    types = [event["type"] for event in expected["added"]]
    assert types.count("student.level_up") >= 3 and types.count("student.achievement_unlocked") >= 6
    streaks = [event["payload"] for event in expected["added"] if event["type"] == "student.streak_updated"]
    student0 = [s for s in streaks if s["student_id"] == "student0"]
    assert any(
        after["freezes_held"] < before["freezes_held"] and after["current_streak"] > before["current_streak"]
        for before, after in zip(student0, student0[1:], strict=False)
    ), "a missed day was bridged by a freeze"
    assert any(s["current_streak"] == 1 for s in streaks[len(streaks) // 2 :]), "a streak broke and restarted"
    awarded = [row for row in expected["ledger"] if row[3] == "lesson"]
    assert len({row[1] for row in awarded}) == len(awarded)  # a lesson sent twice was awarded once
