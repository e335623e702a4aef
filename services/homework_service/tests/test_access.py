"""Who may do what with an assignment: tutor A (its tutor), tutor B, A's student, that student's parent,
anonymous."""

from __future__ import annotations

import httpx
import pytest

from services.homework_service.tests.conftest import People, Person, assign, at

WHO = ("tutor_a", "tutor_b", "student", "parent", "anonymous")
MATRIX: dict[str, tuple[int, ...]] = {
    # action: statuses in WHO's order
    "assign": (201, 404, 403, 403, 401),
    "read": (200, 404, 200, 200, 401),
    "submit": (403, 404, 201, 403, 401),
    "grade": (200, 404, 403, 403, 401),
    "return": (200, 404, 403, 403, 401),
    "submissions": (200, 404, 200, 200, 401),
}


async def _act(client: httpx.AsyncClient, action: str, homework_id: str, student_id: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    url = f"/api/v1/homework/{homework_id}"
    if action == "assign":
        body = {"student_id": student_id, "title": "t", "due_at": at(days=3)}
        return await client.post("/api/v1/homework", json=body, headers=headers)
    if action == "read":
        return await client.get(url, headers=headers)
    if action == "submissions":
        return await client.get(f"{url}/submissions", headers=headers)
    if action == "submit":
        return await client.post(f"{url}/submissions", json={"text": "x"}, headers=headers)
    if action == "grade":
        return await client.post(f"{url}/grade", json={"grade": 4}, headers=headers)
    return await client.post(f"{url}/return", json={"comment": "again"}, headers=headers)


@pytest.mark.parametrize("action", list(MATRIX))
async def test_the_access_matrix(client: httpx.AsyncClient, people: People, action: str) -> None:
    tutor_a, tutor_b = people.tutor(), people.tutor()
    student = people.student_of(tutor_a)
    who: dict[str, Person | None] = {
        "tutor_a": tutor_a,
        "tutor_b": tutor_b,
        "student": student,
        "parent": people.parent_of(student),
        "anonymous": None,
    }
    got = {}
    for name in WHO:
        homework = await assign(client, tutor_a, student)
        if action == "return":
            await client.post(
                f"/api/v1/homework/{homework['id']}/submissions", json={"text": "x"}, headers=student.headers
            )
        person = who[name]
        response = await _act(client, action, homework["id"], student.id, person.headers if person else {})
        got[name] = response.status_code
    assert got == dict(zip(WHO, MATRIX[action], strict=True))


async def test_lists_never_show_other_peoples_homework(client: httpx.AsyncClient, people: People) -> None:
    tutor_a, tutor_b = people.tutor(), people.tutor()
    student = people.student_of(tutor_a)
    await assign(client, tutor_a, student)
    stranger = people.student_of(tutor_b)
    for person in (tutor_b, stranger):
        assert (await client.get("/api/v1/homework", headers=person.headers)).json()["items"] == []
    named = await client.get("/api/v1/homework", params={"student_id": student.id}, headers=tutor_b.headers)
    assert named.status_code == 404
    assert (await client.get("/api/v1/homework")).status_code == 401
