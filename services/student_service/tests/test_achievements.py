"""Achievements: the catalogue (15+, four rarities, the required ones), each unlocked once with its
event, never twice on a redelivery, and progress towards the locked ones."""

from __future__ import annotations

import asyncpg
import httpx

from services.student_service.domain.achievements import ACHIEVEMENTS, BY_CODE
from services.student_service.tests.conftest import Events
from services.student_service.tests.test_awards import completed, graded, linked
from shared.testing.service import People


def test_the_catalogue_has_15_or_more_in_four_rarities_with_the_required_ones() -> None:
    assert len(ACHIEVEMENTS) >= 15 and len(BY_CODE) == len(ACHIEVEMENTS)
    assert {rule.rarity for rule in ACHIEVEMENTS} == {"common", "rare", "epic", "legendary"}
    required = {
        "first_lesson": ("common", "lessons", 1),
        "first_homework": ("common", "homeworks", 1),
        "lessons_50": ("rare", "lessons", 50),
        "excellent_homeworks_10": ("rare", "excellent_homeworks", 10),
        "lessons_100": ("epic", "lessons", 100),
        "streak_30": ("epic", "streak", 30),
        "level_50": ("legendary", "level", 50),
    }
    for code, (rarity, metric, target) in required.items():
        rule = BY_CODE[code]
        assert (rule.rarity, rule.metric, rule.target) == (rarity, metric, target)


async def _unlocked_events(db: asyncpg.Pool, student_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT envelope->'payload'->>'code' AS code FROM outbox_events"
        " WHERE event_type = 'student.achievement_unlocked' AND envelope->'payload'->>'student_id' = $1",
        student_id,
    )
    return sorted(r["code"] for r in rows)


async def test_the_first_lesson_unlocks_once_and_shows_progress(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson = events.wrap(completed(tutor, student, grade=5))
    await events.send(events.wrap(linked(tutor, student)), lesson)
    await events.send(lesson)  # redelivered
    await events.send(events.wrap(completed(tutor, student, grade=3)))  # a second lesson: nothing new of these

    assert await _unlocked_events(db, student.id) == ["first_excellent_lesson", "first_lesson"]
    profile = (await client.get(f"/api/v1/students/{student.id}/profile", headers=student.headers)).json()
    codes = {a["code"]: a["rarity"] for a in profile["achievements"]}
    assert codes == {"first_lesson": "common", "first_excellent_lesson": "common"}

    response = await client.get(f"/api/v1/students/{student.id}/achievements", headers=tutor.headers)
    assert response.status_code == 200, response.text
    items = {item["code"]: item for item in response.json()["items"]}
    assert len(items) == len(ACHIEVEMENTS)
    assert items["first_lesson"]["unlocked_at"] is not None
    assert (items["lessons_50"]["progress"], items["lessons_50"]["target"]) == (2, 50)
    assert items["lessons_50"]["unlocked_at"] is None
    assert items["first_homework"]["progress"] == 0


async def test_ten_excellent_homeworks_unlock_the_rare_one(
    client: httpx.AsyncClient, events: Events, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(
        *[events.wrap(graded(tutor, student, 5)) for _ in range(9)], events.wrap(graded(tutor, student, 4))
    )
    items = {
        i["code"]: i
        for i in (await client.get(f"/api/v1/students/{student.id}/achievements", headers=student.headers)).json()[
            "items"
        ]
    }
    assert items["excellent_homeworks_10"]["progress"] == 9 and items["excellent_homeworks_10"]["unlocked_at"] is None
    await events.send(events.wrap(graded(tutor, student, 5)))
    unlocked = await _unlocked_events(db, student.id)
    assert unlocked.count("excellent_homeworks_10") == 1 and unlocked.count("first_homework") == 1
