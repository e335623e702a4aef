"""Writing the event log and merging facts into the read models; rebuilding them from the log.

The merge rules live in the upserts: a row changes only for a newer observation
(``(as_of, as_of_event)`` greater than the stored one), money and game rows are keyed by
their own ids, homework keeps the latest submission time and the latest grade.
"""

from __future__ import annotations

from sqlalchemy import case, delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics_service.domain.projection import (
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

READ_MODELS = (UserFact, LessonFact, MoneyFact, BalanceFact, HomeworkFact, GameFact)


async def record(session: AsyncSession, envelope: Envelope) -> bool:
    """Keep the envelope in ``event_log``; False when it is already there (then nothing else happens)."""
    stored = await session.execute(
        insert(EventLog)
        .values(
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            occurred_at=envelope.occurred_at,
            envelope=envelope.model_dump(mode="json"),
        )
        .on_conflict_do_nothing(index_elements=[EventLog.event_id])
        .returning(EventLog.seq)
    )
    return stored.first() is not None


async def consume(session: AsyncSession, envelope: Envelope) -> list[Fact]:
    """The incremental path: log the event and merge its facts (in the inbox's transaction)."""
    if not await record(session, envelope):
        return []
    facts = project(envelope)
    for fact in facts:
        await apply(session, fact)
    return facts


async def rebuild(session: AsyncSession) -> int:
    """Drop every read model row and merge the facts of every logged event again; the event count.

    Consumers wait meanwhile (they insert into ``event_log`` first): no event falls between the
    replay and the models it replaces.
    """
    await session.execute(text("LOCK TABLE event_log IN SHARE ROW EXCLUSIVE MODE"))
    for model in READ_MODELS:
        await session.execute(delete(model))
    count = 0
    rows = await session.stream_scalars(select(EventLog.envelope).order_by(EventLog.seq))
    async for raw in rows:
        for fact in project(Envelope.model_validate(raw)):
            await apply(session, fact)
        count += 1
    return count


def _newer(table: type, excluded: object) -> object:
    return tuple_(table.as_of, table.as_of_event) < tuple_(excluded.as_of, excluded.as_of_event)  # type: ignore[attr-defined]


async def apply(session: AsyncSession, fact: Fact) -> None:
    if isinstance(fact, UserTimezone):
        stmt = insert(UserFact).values(
            user_id=fact.user_id, timezone=fact.timezone, as_of=fact.seen.at, as_of_event=fact.seen.event_id
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[UserFact.user_id],
                set_={c: stmt.excluded[c] for c in ("timezone", "as_of", "as_of_event")},
                where=_newer(UserFact, stmt.excluded),
            )
        )
    elif isinstance(fact, LessonState):
        values = {
            "lesson_id": fact.lesson_id,
            "tutor_id": fact.tutor_id,
            "student_id": fact.student_id,
            "starts_at": fact.starts_at,
            "subject": fact.subject,
            "topic": fact.topic,
            "status": fact.status,
            "attendance": fact.attendance,
            "grade": fact.grade,
            "mastery": fact.mastery,
            "as_of": fact.seen.at,
            "as_of_event": fact.seen.event_id,
        }
        stmt = insert(LessonFact).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[LessonFact.lesson_id],
                set_={c: stmt.excluded[c] for c in values if c != "lesson_id"},
                where=_newer(LessonFact, stmt.excluded),
            )
        )
    elif isinstance(fact, MoneyEntry):
        await session.execute(
            insert(MoneyFact)
            .values(
                entry_id=fact.entry_id,
                kind=fact.kind,
                tutor_id=fact.tutor_id,
                student_id=fact.student_id,
                amount=fact.amount,
                currency=fact.currency,
                lesson_id=fact.lesson_id,
                occurred_at=fact.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=[MoneyFact.entry_id])
        )
    elif isinstance(fact, Balance):
        stmt = insert(BalanceFact).values(
            tutor_id=fact.tutor_id,
            student_id=fact.student_id,
            balance=fact.balance,
            currency=fact.currency,
            as_of=fact.seen.at,
            as_of_event=fact.seen.event_id,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[BalanceFact.tutor_id, BalanceFact.student_id],
                set_={c: stmt.excluded[c] for c in ("balance", "currency", "as_of", "as_of_event")},
                where=_newer(BalanceFact, stmt.excluded),
            )
        )
    elif isinstance(fact, HomeworkState):
        await _merge_homework(session, fact)
    elif isinstance(fact, GameEntry):
        await session.execute(
            insert(GameFact)
            .values(
                event_id=fact.event_id,
                kind=fact.kind,
                student_id=fact.student_id,
                tutor_id=fact.tutor_id,
                amount=fact.amount,
                occurred_at=fact.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=[GameFact.event_id])
        )


async def _merge_homework(session: AsyncSession, fact: HomeworkState) -> None:
    stmt = insert(HomeworkFact).values(
        homework_id=fact.homework_id,
        tutor_id=fact.tutor_id,
        student_id=fact.student_id,
        due_at=fact.due_at,
        submitted_at=fact.submitted_at,
        grade=fact.grade,
        graded_at=fact.graded.at if fact.graded else None,
        graded_event=fact.graded.event_id if fact.graded else None,
    )
    new = stmt.excluded
    grade_is_newer = (new.graded_at.is_not(None)) & (
        (HomeworkFact.graded_at.is_(None))
        | (tuple_(HomeworkFact.graded_at, HomeworkFact.graded_event) < tuple_(new.graded_at, new.graded_event))
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[HomeworkFact.homework_id],
            set_={
                # greatest() ignores NULLs: the latest hand-in stands
                "submitted_at": func.greatest(HomeworkFact.submitted_at, new.submitted_at),
                "grade": case((grade_is_newer, new.grade), else_=HomeworkFact.grade),
                "graded_at": case((grade_is_newer, new.graded_at), else_=HomeworkFact.graded_at),
                "graded_event": case((grade_is_newer, new.graded_event), else_=HomeworkFact.graded_event),
            },
        )
    )
