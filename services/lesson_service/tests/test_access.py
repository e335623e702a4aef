"""Who may do what with a lesson, as a matrix: tutor A (its tutor), tutor B, A's student, that student's
parent, another student, an admin, a service account (the bot's own token: it sees every lesson and
changes none; it acts for a person with that person's token), anonymous."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from services.lesson_service.tests.conftest import People, Person, at, lesson_body, schedule

Call = Callable[[httpx.AsyncClient, str, dict[str, str]], object]

# action -> {who: expected status}
MATRIX: dict[str, dict[str, int]] = {
    "read": {
        "tutor_a": 200,
        "tutor_b": 404,
        "student": 200,
        "parent": 200,
        "stranger": 404,
        "admin": 200,
        "service": 200,
        "anonymous": 401,
    },
    "edit": {
        "tutor_a": 200,
        "tutor_b": 404,
        "student": 403,
        "parent": 403,
        "stranger": 404,
        "admin": 403,
        "service": 403,
        "anonymous": 401,
    },
    "complete": {
        "tutor_a": 200,
        "tutor_b": 404,
        "student": 403,
        "parent": 403,
        "stranger": 404,
        "admin": 403,
        "service": 403,
        "anonymous": 401,
    },
    "missed": {
        "tutor_a": 200,
        "tutor_b": 404,
        "student": 403,
        "parent": 403,
        "stranger": 404,
        "admin": 403,
        "service": 403,
        "anonymous": 401,
    },
    "cancel": {
        "tutor_a": 200,
        "tutor_b": 404,
        "student": 200,
        "parent": 200,
        "stranger": 404,
        "admin": 403,
        "service": 403,
        "anonymous": 401,
    },
}


async def _act(client: httpx.AsyncClient, action: str, lesson_id: str, headers: dict[str, str]) -> httpx.Response:
    url = f"/api/v1/lessons/{lesson_id}"
    if action == "read":
        return await client.get(url, headers=headers)
    if action == "edit":
        return await client.patch(url, json={"topic": "Changed"}, headers=headers)
    return await client.post(f"{url}/{action}", json={}, headers=headers)


@pytest.mark.parametrize("action", list(MATRIX))
async def test_the_access_matrix(client: httpx.AsyncClient, people: People, action: str) -> None:
    tutor_a, tutor_b = people.tutor(), people.tutor()
    student = people.student_of(tutor_a)
    who: dict[str, Person | None] = {
        "tutor_a": tutor_a,
        "tutor_b": tutor_b,
        "student": student,
        "parent": people.parent_of(student),
        "stranger": people.student_of(tutor_b),
        "admin": people.admin(),
        "service": Person("telegram-bot", "service", people.users.tokens.auth_header("telegram-bot", "service")),
        "anonymous": None,
    }
    for day, (name, expected) in enumerate(MATRIX[action].items()):
        lesson = await schedule(client, tutor_a, student, starts_at=at(days=10 + day))
        person = who[name]
        response = await _act(client, action, lesson["id"], person.headers if person else {})
        assert response.status_code == expected, f"{action} by {name}: {response.status_code} {response.text}"


async def test_only_a_linked_tutor_schedules_and_nobody_else(client: httpx.AsyncClient, people: People) -> None:
    tutor_a, tutor_b = people.tutor(), people.tutor()
    student = people.student_of(tutor_a)
    parent = people.parent_of(student)
    body = lesson_body(student, at(days=30))
    expected = [(tutor_b, 404), (student, 403), (parent, 403), (people.admin(), 403)]
    for person, status in expected:
        response = await client.post("/api/v1/lessons", json=body, headers=person.headers)
        assert response.status_code == status, (person.role, response.text)
    assert (await client.post("/api/v1/lessons", json=body)).status_code == 401
    assert (await client.post("/api/v1/lessons", json=body, headers=tutor_a.headers)).status_code == 201


async def test_lists_never_show_other_peoples_lessons(client: httpx.AsyncClient, people: People) -> None:
    tutor_a, tutor_b = people.tutor(), people.tutor()
    student = people.student_of(tutor_a)
    await schedule(client, tutor_a, student, starts_at=at(days=40))
    params = {"from": at(days=39), "to": at(days=41)}
    assert (await client.get("/api/v1/lessons", params=params, headers=tutor_b.headers)).json()["items"] == []
    stranger = people.student_of(tutor_b)
    assert (await client.get("/api/v1/lessons", params=params, headers=stranger.headers)).json()["items"] == []
    named = await client.get("/api/v1/lessons", params={**params, "student_id": student.id}, headers=tutor_b.headers)
    assert named.status_code == 404
    assert (await client.get("/api/v1/lessons", params=params)).status_code == 401
