"""A statement budget for the producer's hot path: the SQL statements one ``POST /lessons/{id}/complete``
sends (counted with SQLAlchemy's ``before_cursor_execute``). Each is a round trip and CPU, and the event
path's benchmark sends 100 of these a second (docs/performance.md); more than the budget is a regression.
The effects are checked too, so a cheaper request cannot pass by doing less."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI

from services.lesson_service.tests.conftest import at, outbox_payloads, schedule
from shared.testing.service import People
from shared.testing.statements import statements_sent

# the lesson read and locked after its pair's lock, in one statement (the pair's lock once: it is
# re-entrant, and reflowing the plan needs it too), the lesson's UPDATE that also says whether the pair has
# a plan, and at the commit lesson.completed in the outbox with its NOTIFY (8 before 2026-11-26: the pair
# read, the lock taken twice, the NOTIFY on its own; 5 before 2026-11-27: the lesson locked in a statement
# of its own; 4 before 2026-12-07: the plan's topics read even when there were none). Statements on the
# driver's connection count too (shared.db.DriverStatement announces them).
COMPLETE_BUDGET = 3


async def test_completing_a_lesson_stays_within_its_statement_budget(
    client: httpx.AsyncClient, app: FastAPI, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = await schedule(client, tutor, student, starts_at=at(days=-1))

    # this task's only: the relay's passes and housekeeping share the engine
    with statements_sent(app.state.db.engine, this_task_only=True) as seen:
        done = await client.post(
            f"/api/v1/lessons/{lesson['id']}/complete",
            json={"grade": 5, "attendance": "present"},
            headers=tutor.headers,
        )

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert len(await outbox_payloads(db, "lesson.completed", lesson_id=lesson["id"])) == 1
    locks = [sql for sql in seen if "pg_advisory_xact_lock" in sql]
    assert len(locks) == 1, "the pair's lock is taken once per transaction"
    assert len(seen) <= COMPLETE_BUDGET, "\n".join(sql.splitlines()[0][:120] for sql in seen)
