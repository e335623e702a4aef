"""Lessons that are over, applied in batches, leave exactly what applying them one at a time leaves.

payment-service's handlers of lesson.completed, .cancelled and .missed take every such event the consumer
has waiting at once (``charges.lessons_ended``): one statement each for the accounts' locks, the schedules
and prices, the lessons' rows and the charges, instead of one each per lesson (docs/performance.md). The
same afternoon — charges at the lesson's own price, the student's and the tutor's default, a balance
running out under a schedule ahead (``balance.low`` once), an account made by its first charge, a late
cancellation charged then excused, a no-show, a cancellation the tutor did not charge, a completion
arriving after a newer cancellation of its lesson, the same lesson completed twice, a lesson ahead held
early — is applied to two worlds of their own: one event per transaction, and in batches of several
sizes, through the consumer's own path. Accounts, ledger rows, the lessons' rows and the events added (in
order, each pointing back at its cause) must be the same.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI

from services.payment_service.tests.conftest import Api, Family, ledger_matches_accounts
from shared.events.catalogue import EventPayload, LessonCancelled, LessonCompleted, LessonMissed, LessonScheduled
from shared.events.envelope import Envelope
from shared.testing.naming import named

BASE = datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    families: list[Family]
    lessons: dict[str, uuid.UUID] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    events: list[Envelope] = field(default_factory=list)

    def __post_init__(self) -> None:
        for n, family in enumerate(self.families):
            self.names[family.tutor.id] = f"tutor{n}"
            self.names[family.student.id] = f"student{n}"

    def lesson(
        self, family: int, name: str, starts_in_hours: float, event: type[EventPayload], **fields: Any
    ) -> EventPayload:
        lesson_id = self.lessons.setdefault(name, uuid.uuid4())
        self.names[str(lesson_id)] = name
        starts = BASE + timedelta(hours=starts_in_hours)
        who = self.families[family]
        return event(
            lesson_id=lesson_id, tutor_id=uuid.UUID(who.tutor.id), student_id=uuid.UUID(who.student.id),
            starts_at=starts, ends_at=starts + timedelta(hours=1), subject="Maths", **fields,
        )  # fmt: skip

    def at(self, minutes: float, payload: EventPayload) -> Envelope:
        envelope = Envelope.wrap(
            payload, producer="lesson-service", correlation_id=f"event{len(self.events)}",
            occurred_at=BASE + timedelta(minutes=minutes),
        )  # fmt: skip
        self.names[str(envelope.event_id)] = f"event{len(self.events)}"
        self.events.append(envelope)
        return envelope

    def named(self, value: Any) -> Any:
        """``value`` with every id of this world replaced by its name, for comparing two worlds."""
        return named(value, self.names)


async def _prepare(api: Api) -> World:
    """Four pairs: A with 10,000 on account, the tutor's default 2,500 and two lessons ahead; B with the
    student's own price 1,800 and no account yet; C with 5,000 and lessons carrying their own price; D
    with 3,000 and two lessons ahead at their own prices, 1,000 then 5,000."""
    world = World([api.family(), api.family(), api.family(), api.family()])
    a, b, c, d = world.families
    await api.set_price(a.tutor, 2500)
    await api.top_up(a.tutor, a.student.id, 10_000)
    await api.set_price(b.tutor, 1800, b.student.id)
    await api.top_up(c.tutor, c.student.id, 5000)
    await api.top_up(d.tutor, d.student.id, 3000)
    return world


def _history(world: World) -> list[Envelope]:
    return [
        world.at(-60, world.lesson(0, "ahead1", 48, LessonScheduled)),
        world.at(-59, world.lesson(0, "ahead2", 72, LessonScheduled)),
        world.at(-58, world.lesson(2, "ahead3", 24, LessonScheduled, price=3100, currency="RUB")),
        world.at(-57, world.lesson(3, "ahead4", 24, LessonScheduled, price=1000, currency="RUB")),
        world.at(-56, world.lesson(3, "ahead5", 48, LessonScheduled, price=5000, currency="RUB")),
    ]


def _afternoon(world: World) -> list[Envelope]:
    own = {"price": 3100, "currency": "RUB"}
    events = [
        world.at(1, world.lesson(0, "a1", -5, LessonCompleted)),
        world.at(2, world.lesson(1, "b1", -5, LessonCompleted)),  # B's account is made by this charge
        world.at(3, world.lesson(2, "c1", -5, LessonCompleted, **own)),
        world.at(4, world.lesson(0, "a2", -4, LessonCompleted)),
        world.at(5, world.lesson(1, "b2", -4, LessonCompleted)),
        world.at(6, world.lesson(0, "a3", -3, LessonCompleted)),
        world.at(7, world.lesson(0, "a4", -2, LessonCompleted)),  # 0 left: the next lesson is not covered
        world.at(8, world.lesson(2, "c2", -2, LessonCompleted, **own)),
        world.at(9, world.lesson(0, "a5", -1, LessonCompleted)),  # a debt: said once already
        world.at(10, world.lesson(0, "a2", -4, LessonCompleted)),  # the same lesson again: charged once
        world.at(11, world.lesson(1, "b3", -1, LessonCompleted, chargeable=False)),
        world.at(12, world.lesson(0, "ahead1", 48, LessonCompleted)),  # held early: off the schedule
        # D holds its next lesson early: 2,000 left, the one after it costs 5,000 (low); then a lesson at
        # 100 finds the 5,000 one next, not the one held (which 1,900 would cover)
        world.at(12.2, world.lesson(3, "ahead4", 24, LessonCompleted, price=1000, currency="RUB")),
        world.at(12.4, world.lesson(3, "d1", -1, LessonCompleted, price=100, currency="RUB")),
    ]
    tutor_c = uuid.UUID(world.families[2].tutor.id)
    student_c = uuid.UUID(world.families[2].student.id)
    cancelled = {"cancelled_by": student_c, "cancelled_by_role": "student", **own}
    events += [
        world.at(13, world.lesson(2, "c3", 1, LessonCancelled, **cancelled)),  # late: charged
        world.at(
            14,
            world.lesson(
                2, "c4", 2, LessonCancelled, chargeable=False, cancelled_by=tutor_c, cancelled_by_role="tutor"
            ),
        ),  # fmt: skip
        world.at(
            15, world.lesson(2, "c3", 1, LessonCancelled, **{**cancelled, "chargeable": False}, excused_by=tutor_c)
        ),  # fmt: skip  # excused: given back
        world.at(16, world.lesson(2, "c5", -1, LessonMissed, **own)),  # a no-show: charged
        world.at(
            17,
            world.lesson(
                1, "b4", 3, LessonCancelled, cancelled_by=tutor_c, cancelled_by_role="tutor", chargeable=False
            ),
        ),  # fmt: skip
        world.at(16.5, world.lesson(1, "b4", 3, LessonCompleted)),  # older than its cancellation: stale
        world.at(18, world.lesson(2, "c6", -1, LessonCompleted, **own)),
        world.at(19, world.lesson(2, "c7", -1, LessonCompleted, **own)),
    ]
    return events


async def _apply(app: FastAPI, events: Sequence[Envelope], batch_sizes: Sequence[int]) -> None:
    """Through the consumer's own transaction (inbox rows, runs for batch handlers), ``batch_sizes`` at a
    time in turn (cycled): what its worker does with the deliveries it took."""
    start, turn = 0, 0
    while start < len(events):
        size = batch_sizes[turn % len(batch_sizes)]
        await app.state.consumer._apply_in_one_transaction(events[start : start + size])
        start, turn = start + size, turn + 1


async def _state(db: asyncpg.Pool, world: World) -> dict[str, Any]:
    students = [uuid.UUID(f.student.id) for f in world.families]
    accounts = [
        dict(row)
        for row in await db.fetch(
            "SELECT student_id, currency, balance, low_notified FROM accounts WHERE student_id = ANY($1::uuid[])",
            students,
        )
    ]
    rows = await db.fetch(
        "SELECT id, student_id, kind, amount, currency, balance_after, lesson_id, refunds_entry_id, reason,"
        " CASE WHEN kind = 'top_up' THEN NULL ELSE created_at END AS at"
        " FROM ledger_entries WHERE student_id = ANY($1::uuid[]) ORDER BY seq",
        students,
    )
    for row in rows:  # an entry is named by what it is
        lesson = world.names.get(str(row["lesson_id"]), "") if row["lesson_id"] else ""
        world.names[str(row["id"])] = f"{row['kind']}:{lesson or row['amount']}"
    ledger = [{k: v for k, v in dict(row).items() if k != "id"} for row in rows]
    lessons = [
        dict(row)
        for row in await db.fetch(
            "SELECT lesson_id, status, observed_at, price FROM scheduled_lessons WHERE lesson_id = ANY($1::uuid[])",
            list(world.lessons.values()),
        )
    ]
    causes = [str(e.event_id) for e in world.events]
    added = [
        {"type": row["event_type"], "cause": row["cause"], "payload": json.loads(row["payload"])}
        for row in await db.fetch(
            "SELECT event_type, envelope->>'causation_id' AS cause, envelope->'payload' AS payload FROM outbox_events"
            " WHERE envelope->>'causation_id' = ANY($1::text[]) ORDER BY created_at",
            causes,
        )
    ]
    named = world.named({"accounts": accounts, "ledger": ledger, "lessons": lessons, "added": added})
    for rows_ in ("accounts", "lessons"):
        named[rows_].sort(key=json.dumps)
    # one ledger in the order written, per account (accounts interleave differently in a batch)
    named["ledger"].sort(key=lambda row: row["student_id"])
    return named


@pytest.mark.parametrize("batch_sizes", [(50,), (3, 1, 7), (2,)], ids=["all-at-once", "mixed", "pairs"])
async def test_an_afternoon_applied_in_batches_leaves_what_one_at_a_time_leaves(
    api: Api, app: FastAPI, db: asyncpg.Pool, batch_sizes: tuple[int, ...]
) -> None:
    one_at_a_time, batched = await _prepare(api), await _prepare(api)
    for world, sizes in ((one_at_a_time, (1,)), (batched, batch_sizes)):
        await _apply(app, _history(world), (1,))
        await _apply(app, _afternoon(world), sizes)

    expected = await _state(db, one_at_a_time)
    assert await _state(db, batched) == expected
    await ledger_matches_accounts(db)

    # the afternoon is worth comparing: it did what the rules say
    kinds = [(row["student_id"], row["kind"], row["amount"]) for row in expected["ledger"]]
    assert kinds.count(("student0", "lesson_charge", -2500)) == 6  # a1-a5 and ahead1; a2 once
    assert ("student1", "lesson_charge", -1800) in kinds  # the student's own price, on a new account
    assert ("student2", "late_cancel_charge", -3100) in kinds and ("student2", "correction", 3100) in kinds
    assert ("student2", "no_show_charge", -3100) in kinds
    types = [event["type"] for event in expected["added"]]
    # once each: A when its balance stopped covering the lesson ahead, B in debt, C and D short of theirs
    assert types.count("balance.low") == 4
    assert types.count("payment.charged") == 16 and types.count("payment.refunded") == 1
    assert {"student_id": "student3", "currency": "RUB", "balance": 1900, "low_notified": True} in expected["accounts"]
    b4 = next(row for row in expected["lessons"] if row["lesson_id"] == "b4")
    assert b4["status"] == "cancelled"  # the stale completion changed nothing
