"""The seeding tool (shared/seeding.py and services/*/seed.py): the world it draws is consistent, what it
writes is what the services' own rules make of that world, and a seeded world works through the gateway."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from benchmarks.capacity.tokens import mint_tokens, token_issuer
from services.analytics_service.domain.store import READ_MODELS
from services.analytics_service.domain.store import rebuild as rebuild_read_models
from services.student_service.domain import xp
from services.student_service.domain.rebuild import rebuild as rebuild_profiles
from shared import cli
from shared.db import asyncpg_dsn
from shared.seeding import (
    HOMEWORK_PER_STUDENT,
    SEED_PASSWORD,
    WEEKS_AHEAD,
    WEEKS_HELD,
    World,
    build_world,
    seed_fleet,
    seeded_specs,
)
from shared.testing import infra

AS_OF = datetime(2026, 3, 11, 14, 37, tzinfo=UTC)  # a Wednesday afternoon


def small_world(**options: Any) -> World:
    return build_world(3, 4, as_of=options.pop("as_of", AS_OF), **options)


# --- the world, drawn ----------------------------------------------------------------------------


def test_the_same_arguments_draw_the_same_world_and_another_seed_another_one() -> None:
    assert small_world(seed=7) == small_world(seed=7)
    assert {p.id for p in small_world(seed=7).people}.isdisjoint({p.id for p in small_world(seed=8).people})


def test_the_world_has_the_asked_for_people_linked_to_one_tutor_each() -> None:
    world = small_world(parent_every=3)
    assert (len(world.tutors), len(world.students), len(world.parents)) == (3, 12, 4)
    tutor_links = [link for link in world.links if link.relation == "tutor"]
    assert sorted(link.student_id for link in tutor_links) == sorted(s.id for s in world.students)
    assert all(len(students) == 4 for students in world.students_of.values())
    for link in world.links:
        if link.relation == "parent":
            assert world.tutor_of[link.student_id] == link.tutor_id
    ids = [p.id for p in world.people] + [x.id for x in world.lessons] + [r.id for r in world.ledger]
    ids += [h.id for h in world.homework] + [m.id for m in world.materials]
    assert len(ids) == len(set(ids))
    assert len({p.email for p in world.people}) == len(world.people)


def test_each_student_has_weekly_lessons_held_before_now_and_scheduled_after_it() -> None:
    world = small_world()
    lessons_of: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for lesson in world.lessons:
        lessons_of[lesson.student_id].append(lesson)
        assert lesson.held == (lesson.ends_at <= world.as_of)
        assert lesson.status in ("completed", "missed", "scheduled")
        assert (lesson.grade is not None) == (lesson.status == "completed")
    for lessons in lessons_of.values():
        starts = [x.starts_at for x in lessons]
        assert len(lessons) == WEEKS_HELD + WEEKS_AHEAD + 1
        assert all(later - earlier == timedelta(weeks=1) for earlier, later in zip(starts, starts[1:], strict=False))
        assert sum(x.held for x in lessons) >= WEEKS_HELD


def test_no_two_lessons_of_a_tutor_overlap() -> None:
    world = build_world(2, 25, as_of=AS_OF)
    by_tutor: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for lesson in world.lessons:
        by_tutor[lesson.tutor_id].append(lesson)
    for lessons in by_tutor.values():
        lessons.sort(key=lambda x: x.starts_at)
        assert all(a.ends_at <= b.starts_at for a, b in zip(lessons, lessons[1:], strict=False))


def test_every_balance_is_the_chain_of_its_ledger_rows_with_one_charge_per_held_lesson() -> None:
    world = small_world()
    rows_of: dict[tuple[uuid.UUID, uuid.UUID], list[Any]] = defaultdict(list)
    for row in world.ledger:
        rows_of[(row.tutor_id, row.student_id)].append(row)
    for (tutor_id, student_id), rows in rows_of.items():
        running = 0
        for row in rows:
            running += row.amount
            assert row.balance_after == running
            assert (row.amount > 0) == (row.kind == "top_up")
        assert world.balance(tutor_id, student_id) == running
        charged = sorted(row.lesson_id for row in rows if row.kind != "top_up")
        held = sorted(x.id for x in world.lessons if x.student_id == student_id and x.held)
        assert charged == held
        assert all(-row.amount == world.prices[tutor_id] for row in rows if row.kind != "top_up")
    assert any(balance < 0 for balance in (world.balance(*key) for key in rows_of)), "some students owe"


def test_homework_follows_the_latest_attended_lessons_in_every_state_before_now() -> None:
    world = small_world()
    for student in world.students:
        work = [h for h in world.homework if h.student_id == student.id]
        assert len(work) == HOMEWORK_PER_STUDENT
        assert {h.status for h in work} == {"assigned", "submitted", "graded"}
        for h in work:
            assert world.lesson_by_id[h.lesson_id].attended
            assert (h.submitted_at is not None) == (h.status != "assigned") == (h.submission_id is not None)
            assert (h.grade is not None) == (h.status == "graded") == (h.graded_at is not None)
            assert all(moment <= world.as_of for moment in (h.assigned_at, h.submitted_at, h.graded_at) if moment)


def test_a_world_is_refused_without_tutors_or_students_or_with_an_unsafe_tag() -> None:
    for arguments, options in (((0, 3), {}), ((2, 0), {}), ((2, 85), {}), ((2, 3), {"tag": "A b"})):
        with pytest.raises(ValueError):
            build_world(*arguments, as_of=AS_OF, **options)


# --- written: the services' own rules agree -------------------------------------------------------


async def _rows(url: str, table: str) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return sorted(tuple(record) for record in await connection.fetch(f"SELECT * FROM {table}"))
    finally:
        await connection.close()


async def test_analytics_read_models_are_what_rebuilding_them_from_the_seeded_event_log_makes() -> None:
    world = small_world(parent_every=2)
    async with infra.migrated_database("analytics-service", infra.run_id(), "seed") as url:
        written = await seed_fleet(world, {"analytics-service": url})
        assert written["analytics-service"]["event_log"] > len(world.lessons)
        tables = [model.__tablename__ for model in READ_MODELS]
        seeded = {table: await _rows(url, table) for table in tables}
        assert all(seeded.values()), "every read model has rows"
        replayed = await cli.in_one_transaction(url, "seed-test", rebuild_read_models)
        assert replayed == written["analytics-service"]["event_log"]
        assert {table: await _rows(url, table) for table in tables} == seeded


async def test_student_profiles_are_what_the_rebuild_command_makes_of_the_seeded_ledger() -> None:
    world = small_world()
    async with infra.migrated_database("student-service", infra.run_id(), "seed") as url:
        await seed_fleet(world, {"student-service": url})
        columns = "student_id, xp, level, current_streak, longest_streak, freezes_held"
        seeded = await _rows(url, f"(SELECT {columns} FROM profiles) AS p")
        assert all(row[1] > 0 for row in seeded)
        assert await cli.in_one_transaction(url, "seed-test", rebuild_profiles) == len(world.students)
        assert await _rows(url, f"(SELECT {columns} FROM profiles) AS p") == seeded
        achievements = await _rows(url, "achievements")
        assert {row[1] for row in achievements} >= {"first_lesson", "first_homework"}


async def test_the_command_line_seeds_the_named_services_from_their_database_url_variables() -> None:
    async with infra.migrated_database("user-service", infra.run_id(), "seedcli") as url:
        command = [sys.executable, "-m", "shared.seeding", "user-service", "--tutors", "2", "--students-per-tutor", "3"]
        process = await asyncio.create_subprocess_exec(
            *command,
            env={**os.environ, "USER_SERVICE_DATABASE_URL": url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        assert "seeded user-service" in stderr.decode()
        users = await _rows(url, "(SELECT role, count(*) FROM users GROUP BY role) AS r")
        assert users == [("parent", 1), ("student", 6), ("tutor", 2)]
        process = await asyncio.create_subprocess_exec(
            *command, "--tutors", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await process.communicate()
        assert process.returncode == 2 and b"at least one tutor" in stderr


# --- through the gateway of the test fleet ------------------------------------------------------


async def _login(gateway: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await gateway.post("/api/v1/auth/login", json={"email": email, "password": SEED_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_seeded_world_is_read_and_written_through_the_gateway_as_its_users(fleet: Any) -> None:
    now = datetime.now(UTC)
    world = build_world(2, 3, as_of=now, seed=uuid.uuid4().int % 10**6, tag=f"t{uuid.uuid4().hex[:8]}", parent_every=2)
    await seed_fleet(world, {spec.name: fleet.direct_database_url(spec.name) for spec in seeded_specs()})
    tutor = world.tutors[0]
    students = world.students_of[tutor.id]
    child = next(s for s in students if s in world.parents_of)
    parent = next(p for p in world.parents if p.id == world.parents_of[child][0])
    student = next(s for s in world.students if s.id == child)

    async with fleet.client("api-gateway") as gateway:
        as_tutor = await _login(gateway, tutor.email)
        listed = await gateway.get("/api/v1/users/students", headers=as_tutor)
        assert listed.status_code == 200, listed.text
        assert {item["id"] for item in listed.json()["items"]} == {str(s) for s in students}

        theirs = [x for x in world.lessons if x.tutor_id == tutor.id]
        window = {
            "from": min(x.starts_at for x in theirs).isoformat(),
            "to": max(x.ends_at for x in theirs).isoformat(),
            "limit": 200,
        }
        lessons = await gateway.get("/api/v1/lessons", params=window, headers=as_tutor)
        assert lessons.status_code == 200, lessons.text
        statuses = {item["id"]: item["status"] for item in lessons.json()["items"]}
        assert statuses == {str(x.id): x.status for x in theirs}

        balance = world.balance(tutor.id, child)
        for who in (await _login(gateway, student.email), await _login(gateway, parent.email), as_tutor):
            answer = await gateway.get(f"/api/v1/payments/balances/{child}", headers=who)
            assert answer.status_code == 200, answer.text
            assert (answer.json()["balance"], answer.json()["in_debt"]) == (balance, balance < 0)

        as_student = await _login(gateway, student.email)
        earned = sum(xp.lesson_xp("regular", x.grade) for x in world.lessons if x.student_id == child and x.attended)
        earned += sum(xp.homework_xp(h.grade) for h in world.homework if h.student_id == child and h.grade)
        earned += sum(xp.top_up_xp(r.lessons_covered) for r in world.ledger if r.student_id == child)
        profile = await gateway.get("/api/v1/students/me/profile", headers=as_student)
        assert profile.status_code == 200, profile.text
        assert (profile.json()["xp"], profile.json()["level"]) == (earned, xp.level_for_xp(earned))
        assert "first_lesson" in {a["code"] for a in profile.json()["achievements"]}

        homework = await gateway.get("/api/v1/homework", headers=as_student)
        assert homework.status_code == 200, homework.text
        assert {item["id"] for item in homework.json()["items"]} == {
            str(h.id) for h in world.homework if h.student_id == child
        }

        span = {
            "from": (now - timedelta(days=120)).date().isoformat(),
            "to": (now + timedelta(days=1)).date().isoformat(),
        }
        summary = await gateway.get("/api/v1/analytics/tutors/me/summary", params=span, headers=as_tutor)
        assert summary.status_code == 200, summary.text
        held = [x for x in theirs if x.held]
        assert summary.json()["lessons"] == {
            "held": sum(x.attended for x in held),
            "cancelled": 0,
            "missed": sum(not x.attended for x in held),
        }
        debts = {(d["student_id"], d["amount"]) for d in summary.json()["debts"]}
        assert debts == {(str(s), -world.balance(tutor.id, s)) for s in students if world.balance(tutor.id, s) < 0}

        # the benchmark's tokens: signed like user-service's, accepted like a login's
        minted = mint_tokens(world, token_issuer(fleet.env["user-service"]), now=now)
        as_minted_tutor = {"Authorization": f"Bearer {minted[tutor.id]}"}
        me = await gateway.get("/api/v1/users/me", headers=as_minted_tutor)
        assert (me.status_code, me.json()["id"]) == (200, str(tutor.id))

        # the workload's writes on seeded data
        lesson = {
            "student_id": str(child),
            "starts_at": (now + timedelta(days=400)).replace(minute=0, second=0, microsecond=0).isoformat(),
            "subject": "Mathematics",
        }
        scheduled = await gateway.post("/api/v1/lessons", json=lesson, headers=as_minted_tutor)
        assert scheduled.status_code == 201, scheduled.text
        top_up = {"student_id": str(child), "amount": 150_000, "currency": "RUB", "method": "cash"}
        paid = await gateway.post("/api/v1/payments/top-ups", json=top_up, headers=as_minted_tutor)
        assert paid.status_code == 201, paid.text
        assert paid.json()["balance_after"] == balance + 150_000
        open_work = next(h for h in world.homework if h.student_id == child and h.status == "assigned")
        as_minted_student = {"Authorization": f"Bearer {minted[child]}"}
        handed_in = await gateway.post(
            f"/api/v1/homework/{open_work.id}/submissions", json={"text": "done"}, headers=as_minted_student
        )
        assert handed_in.status_code == 201, handed_in.text
