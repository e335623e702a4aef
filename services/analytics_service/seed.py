"""analytics-service's part of a seeded world (``shared/seeding.py``): the events the other services' seeded
histories would have published (their ``seed.events``), those it consumes kept in ``event_log`` as
received, and the read models as merging their facts would leave them.

Merging one fact at a time (``store.apply``, what the consumer and ``cli rebuild`` do) takes minutes for
a large world, so the facts of :func:`projection.project` are merged here in memory by the store's rules
(the latest observation wins, ties by event id; money and game rows are kept once; homework keeps the
latest hand-in and the latest grade) and copied. ``tests/test_seeding.py`` checks that ``cli rebuild``
leaves the copied read models exactly as they are.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics_service.domain.projection import (
    CONSUMED_TYPES,
    Balance,
    Fact,
    GameEntry,
    HomeworkState,
    LessonState,
    MoneyEntry,
    UserTimezone,
    project,
)
from services.analytics_service.models import (
    BalanceFact,
    EventLog,
    GameFact,
    HomeworkFact,
    LessonFact,
    MoneyFact,
    UserFact,
)
from shared.events.envelope import Envelope
from shared.seeding import World, copy_rows

# the services whose published events it consumes (the others publish none it reads)
PRODUCERS = ("user_service", "lesson_service", "payment_service", "homework_service", "student_service")


def consumed(world: World) -> Iterator[Envelope]:
    for package in PRODUCERS:
        for envelope in importlib.import_module(f"services.{package}.seed").events(world):
            if envelope.event_type in CONSUMED_TYPES:
                yield envelope


def merged(facts: Iterable[Fact]) -> dict[type, dict[Any, Fact]]:
    """Fact type → key → the fact the store's upserts would leave."""
    kept: dict[type, dict[Any, Fact]] = {kind: {} for kind in (UserTimezone, LessonState, Balance, MoneyEntry, HomeworkState, GameEntry)}  # fmt: skip
    for fact in facts:
        table = kept[type(fact)]
        if isinstance(fact, UserTimezone | LessonState | Balance):
            key = (fact.tutor_id, fact.student_id) if isinstance(fact, Balance) else _id(fact)
            old = table.get(key)
            if old is None or (old.seen.at, old.seen.event_id) < (fact.seen.at, fact.seen.event_id):  # type: ignore[union-attr]
                table[key] = fact
        elif isinstance(fact, MoneyEntry | GameEntry):
            table.setdefault(_id(fact), fact)
        else:
            table[fact.homework_id] = _merge_homework(table.get(fact.homework_id), fact)  # type: ignore[arg-type]
    return kept


def _id(fact: Fact) -> Any:
    return getattr(fact, {UserTimezone: "user_id", LessonState: "lesson_id", MoneyEntry: "entry_id", GameEntry: "event_id"}[type(fact)])  # fmt: skip


def _merge_homework(old: HomeworkState | None, new: HomeworkState) -> HomeworkState:
    if old is None:
        return new
    submitted = max((x for x in (old.submitted_at, new.submitted_at) if x is not None), default=None)
    newer_grade = new.graded is not None and (
        old.graded is None or (old.graded.at, old.graded.event_id) < (new.graded.at, new.graded.event_id)
    )
    return replace(old, submitted_at=submitted, grade=new.grade if newer_grade else old.grade,
                   graded=new.graded if newer_grade else old.graded)  # fmt: skip


def _seen(fact: UserTimezone | LessonState | Balance) -> dict[str, Any]:
    values = {name: value for name, value in asdict(fact).items() if name != "seen"}
    return {**values, "as_of": fact.seen.at, "as_of_event": fact.seen.event_id}


def _homework(fact: HomeworkState) -> dict[str, Any]:
    values = {name: value for name, value in asdict(fact).items() if name != "graded"}
    graded = fact.graded
    return {**values, "graded_at": graded.at if graded else None, "graded_event": graded.event_id if graded else None}


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    envelopes = list(consumed(world))
    log = (
        {
            "event_id": e.event_id,
            "event_type": e.event_type,
            "occurred_at": e.occurred_at,
            "envelope": e.to_json().decode(),
            "received_at": e.occurred_at,
        }
        for e in envelopes
    )
    facts = merged(fact for envelope in envelopes for fact in project(envelope))
    return {
        "event_log": await copy_rows(session, EventLog.__table__, log),
        "users": await copy_rows(session, UserFact.__table__, map(_seen, facts[UserTimezone].values())),  # type: ignore[arg-type]
        "lessons": await copy_rows(session, LessonFact.__table__, map(_seen, facts[LessonState].values())),  # type: ignore[arg-type]
        "money": await copy_rows(session, MoneyFact.__table__, map(asdict, facts[MoneyEntry].values())),  # type: ignore[arg-type]
        "balances": await copy_rows(session, BalanceFact.__table__, map(_seen, facts[Balance].values())),  # type: ignore[arg-type]
        "homework": await copy_rows(session, HomeworkFact.__table__, map(_homework, facts[HomeworkState].values())),  # type: ignore[arg-type]
        "game": await copy_rows(session, GameFact.__table__, map(asdict, facts[GameEntry].values())),  # type: ignore[arg-type]
    }
