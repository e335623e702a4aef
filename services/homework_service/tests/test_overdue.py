"""The overdue scheduler: "what is due at ``now``" emits ``homework.overdue`` once per assignment whose
deadline passed unsubmitted, across passes, restarts and two instances running at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import asyncpg
import httpx
from fastapi import FastAPI

from services.homework_service.domain.overdue import emit_overdue, start_scheduler, stop_scheduler
from services.homework_service.settings import HomeworkServiceSettings
from services.homework_service.tests.conftest import NOW, People, assign, at, outbox_payloads, submit
from shared.clock import FakeClock
from shared.db import Database
from shared.testing.events import eventually


async def test_overdue_once_when_the_deadline_passes_unsubmitted(
    client: httpx.AsyncClient, app: FastAPI, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    late = await assign(client, tutor, student, due_at=at(days=100, hours=1))
    handed_in = await assign(client, tutor, student, due_at=at(days=100, hours=1))
    later = await assign(client, tutor, student, due_at=at(days=100, hours=5))
    assert (await submit(client, student, handed_in["id"])).status_code == 201

    before = await emit_overdue(app.state.db, NOW + timedelta(days=100))
    assert {str(x) for x in before}.isdisjoint({late["id"], handed_in["id"], later["id"]})

    first = {str(x) for x in await emit_overdue(app.state.db, NOW + timedelta(days=100, hours=2))}
    assert late["id"] in first and handed_in["id"] not in first and later["id"] not in first
    second = {str(x) for x in await emit_overdue(app.state.db, NOW + timedelta(days=100, hours=3))}
    assert late["id"] not in second  # once per assignment
    assert len(await outbox_payloads(db, "homework.overdue", homework_id=late["id"])) == 1
    assert await outbox_payloads(db, "homework.overdue", homework_id=handed_in["id"]) == []

    # a new scheduler (a restart) remembers: the mark is in the database
    settings: HomeworkServiceSettings = app.state.settings
    restarted = Database(settings.database_url, service="homework-service", pool_size=1, max_overflow=1)
    try:
        third = {str(x) for x in await emit_overdue(restarted, NOW + timedelta(days=100, hours=6))}
    finally:
        await restarted.dispose()
    assert later["id"] in third and late["id"] not in third
    assert len(await outbox_payloads(db, "homework.overdue", homework_id=later["id"])) == 1


async def test_two_schedulers_at_once_emit_each_overdue_exactly_once(
    client: httpx.AsyncClient, app: FastAPI, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    due = [(await assign(client, tutor, student, due_at=at(days=200)))["id"] for _ in range(30)]
    settings: HomeworkServiceSettings = app.state.settings
    instances = [
        Database(settings.database_url, service="homework-service", pool_size=2, max_overflow=0) for _ in range(2)
    ]
    try:
        when = NOW + timedelta(days=200, hours=1)
        results = await asyncio.gather(*(emit_overdue(x, when, batch_size=3) for x in instances for _ in range(2)))
    finally:
        for instance in instances:
            await instance.dispose()
    emitted = [str(x) for result in results for x in result]
    mine = [x for x in emitted if x in set(due)]
    assert sorted(mine) == sorted(due)  # every one, none twice
    for homework_id in due:
        assert len(await outbox_payloads(db, "homework.overdue", homework_id=homework_id)) == 1


async def test_the_apps_background_loop_emits_on_its_interval(
    client: httpx.AsyncClient, app: FastAPI, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    homework = await assign(client, tutor, student, due_at=at(days=300))
    settings: HomeworkServiceSettings = app.state.settings
    # the loop as an instance starts it: its own clock (past the deadline), its database, a short interval
    instance = SimpleNamespace(
        state=SimpleNamespace(
            db=app.state.db,
            clock=FakeClock(NOW + timedelta(days=300, hours=1)),
            settings=settings.model_copy(update={"overdue_interval_seconds": 0.05}),
        )
    )
    await start_scheduler(instance)  # type: ignore[arg-type]
    try:

        async def announced() -> bool:
            return len(await outbox_payloads(db, "homework.overdue", homework_id=homework["id"])) == 1

        await eventually(announced, what="homework.overdue from the loop")
        await asyncio.sleep(0.2)  # a few more passes: still once
        assert await announced()
    finally:
        await stop_scheduler(instance)  # type: ignore[arg-type]
    assert instance.state.overdue_task.done()
