"""A statement budget for the hot path: the SQL statements one ``lesson.completed`` costs student-service
(the inbox row and the handler, in one transaction, as the consumer runs them) for a student with a
history — several achievements already unlocked, a streak going — counted with SQLAlchemy's
``before_cursor_execute`` on the engine. Every statement is a round trip and most of the handler's CPU
(docs/performance.md, the event-path benchmark), so more statements than the budget is a regression.
The effects are checked too, so a cheaper handler cannot pass by doing less."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert, select

from services.student_service.events import SUBSCRIPTIONS
from services.student_service.models import Achievement, Profile, StudyDay, XpEntry
from services.student_service.tests.conftest import NOW
from shared import context
from shared.db import Database
from shared.events.catalogue import LessonCompleted
from shared.events.envelope import Envelope
from shared.tables import inbox_events, outbox_events
from shared.testing.statements import statements_sent

# 32 before the hot path was trimmed (three ensure_profile upserts and reads, a profile UPDATE per
# autoflush, an INSERT per achievement already reached, twice, the study days read twice), then 11; now 8:
# the inbox row, the profile read and locked, the achievement standing, the study days, the ledger row, the
# new day, one UPDATE of the profile, and at the commit the 3 outbox rows and the NOTIFY in one statement
LESSON_COMPLETED_BUDGET = 8


async def _apply(database: Database, envelope: Envelope) -> list[str]:
    """Run one event as the consumer does (its inbox row, then its handler, one transaction); the SQL sent."""
    token = context.causation_id.set(str(envelope.event_id))
    try:
        with statements_sent(database.engine) as statements:
            async with database.transaction() as session:
                await session.execute(
                    insert(inbox_events).values(event_id=envelope.event_id, event_type=envelope.event_type)
                )
                await SUBSCRIPTIONS[envelope.event_type](session, envelope)
    finally:
        context.causation_id.reset(token)
    return statements


def _lesson(student_id: uuid.UUID, tutor_id: uuid.UUID, day: int) -> Envelope:
    lesson = LessonCompleted(
        lesson_id=uuid.uuid4(),
        tutor_id=tutor_id,
        student_id=student_id,
        starts_at=NOW + timedelta(days=day, hours=-1),
        ends_at=NOW + timedelta(days=day),
        subject="Maths",
        lesson_type="regular",
        grade=5,
    )
    return Envelope.wrap(
        lesson, producer="lesson-service", correlation_id="statement-budget", occurred_at=NOW + timedelta(days=day)
    )


async def test_one_lesson_completed_stays_within_its_statement_budget(database: Database) -> None:
    student_id, tutor_id = uuid.uuid4(), uuid.uuid4()
    # 15 daily lessons graded 5: 3,000 XP (level 10), a 15-day streak; first_lesson,
    # first_excellent_lesson, level_5, level_10 and streak_7 unlocked
    for day in range(15):
        await _apply(database, _lesson(student_id, tutor_id, day))

    envelope = _lesson(student_id, tutor_id, 15)
    statements = await _apply(database, envelope)

    async with database.transaction() as session:
        profile = await session.get(Profile, student_id)
        assert profile is not None
        assert (profile.xp, profile.level, profile.current_streak, profile.longest_streak) == (3200, 11, 16, 16)
        assert str(profile.last_lesson_id) == str(envelope.payload["lesson_id"])
        ledger = (await session.execute(select(XpEntry.amount).where(XpEntry.student_id == student_id))).all()
        assert len(ledger) == 16
        codes = set(
            (await session.execute(select(Achievement.code).where(Achievement.student_id == student_id))).scalars()
        )
        assert codes == {"first_lesson", "first_excellent_lesson", "level_5", "level_10", "streak_7"}
        days = (await session.execute(select(StudyDay.day).where(StudyDay.student_id == student_id))).all()
        assert len(days) == 16
        added = (
            await session.execute(
                select(outbox_events.c.event_type).where(
                    outbox_events.c.envelope["causation_id"].astext == str(envelope.event_id)
                )
            )
        ).scalars()
        assert sorted(added) == ["student.level_up", "student.streak_updated", "student.xp_awarded"]

    assert len(statements) <= LESSON_COMPLETED_BUDGET, "\n".join(statements)
