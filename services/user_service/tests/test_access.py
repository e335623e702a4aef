"""Who may see whom, unlinking, the students list and /internal/links."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from services.user_service.cli import AdminAccount, create_admin
from services.user_service.settings import UserServiceSettings
from services.user_service.tests.conftest import PASSWORD, Api, assert_error, bearer, outbox_payloads, unique_email


async def _get_user(client: httpx.AsyncClient, user_id: str, headers: dict[str, str]) -> httpx.Response:
    return await client.get(f"/api/v1/users/{user_id}", headers=headers)


async def test_users_see_only_their_own_people(client: httpx.AsyncClient, api: Api) -> None:
    tutor, other_tutor = await api.tutor(), await api.tutor()
    student, classmate = await api.student_of(tutor), await api.student_of(tutor)
    strangers_student = await api.student_of(other_tutor)

    assert (await _get_user(client, student.id, tutor.headers)).json()["id"] == student.id
    assert (await _get_user(client, student.id, student.headers)).status_code == 200
    assert_error(await _get_user(client, strangers_student.id, tutor.headers), 404)  # another tutor's student
    assert_error(await _get_user(client, student.id, other_tutor.headers), 404)
    assert_error(await _get_user(client, classmate.id, student.headers), 404)  # a student sees only themselves
    assert_error(await _get_user(client, tutor.id, other_tutor.headers), 404)
    assert_error(await _get_user(client, str(uuid.uuid4()), tutor.headers), 404)  # unknown looks the same
    assert_error(await _get_user(client, "not-a-uuid", tutor.headers), 422)


async def test_after_unlinking_the_former_tutor_gets_404(client: httpx.AsyncClient, api: Api, db: asyncpg.Pool) -> None:
    tutor = await api.tutor()
    student, stays = await api.student_of(tutor), await api.student_of(tutor)

    response = await client.delete(f"/api/v1/users/students/{student.id}", headers=tutor.headers)
    assert response.status_code == 204
    assert_error(await _get_user(client, student.id, tutor.headers), 404)
    listed = (await client.get("/api/v1/users/students", headers=tutor.headers)).json()["items"]
    assert [item["id"] for item in listed] == [stays.id]
    assert_error(await client.delete(f"/api/v1/users/students/{student.id}", headers=tutor.headers), 404)
    assert (await _get_user(client, student.id, student.headers)).status_code == 200  # the account itself stays

    [unlinked] = await outbox_payloads(db, "student.unlinked", student_id=student.id)
    assert unlinked == {"student_id": student.id, "principal_id": tutor.id, "relation": "tutor", "tutor_id": tutor.id}


async def test_only_a_tutor_unlinks_and_only_their_own_students(client: httpx.AsyncClient, api: Api) -> None:
    tutor, other_tutor = await api.tutor(), await api.tutor()
    student = await api.student_of(tutor)
    assert_error(await client.delete(f"/api/v1/users/students/{student.id}", headers=other_tutor.headers), 404)
    assert_error(await client.delete(f"/api/v1/users/students/{student.id}", headers=student.headers), 403)
    assert (await _get_user(client, student.id, tutor.headers)).status_code == 200


async def test_the_students_list_pages_by_cursor(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    joined = [(await api.student_of(tutor)).id for _ in range(3)]

    first = await client.get("/api/v1/users/students", params={"limit": 2}, headers=tutor.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["id"] for item in page["items"]] == joined[:2] and page["next_cursor"]
    assert {"linked_at", "full_name", "timezone"} <= set(page["items"][0])
    second = await client.get(
        "/api/v1/users/students", params={"limit": 2, "cursor": page["next_cursor"]}, headers=tutor.headers
    )
    assert [item["id"] for item in second.json()["items"]] == joined[2:]
    assert second.json()["next_cursor"] is None

    for bad in ({"limit": 0}, {"limit": 201}, {"cursor": "garbage"}):
        error = assert_error(await client.get("/api/v1/users/students", params=bad, headers=tutor.headers), 422)
        assert error["details"][0]["field"] in bad
    student = await api.student_of(tutor)
    assert_error(await client.get("/api/v1/users/students", headers=student.headers), 403)


async def test_internal_links_answer_service_callers_only(client: httpx.AsyncClient, api: Api) -> None:
    tutor, other_tutor = await api.tutor(), await api.tutor()
    student = await api.student_of(tutor)
    parent = await api.parent_of(tutor, student)
    service = await api.lesson_service_headers()

    response = await client.get(f"/internal/links/{tutor.id}/{student.id}", headers=service)
    assert response.status_code == 200, response.text
    assert response.json() == {"principal_id": tutor.id, "student_id": student.id, "relation": "tutor", "active": True}
    parent_link = await client.get(f"/internal/links/{parent.id}/{student.id}", headers=service)
    assert parent_link.json()["relation"] == "parent"
    assert_error(await client.get(f"/internal/links/{other_tutor.id}/{student.id}", headers=service), 404)

    assert_error(await client.get(f"/internal/links/{tutor.id}/{student.id}"), 401)
    assert_error(await client.get(f"/internal/links/{tutor.id}/{student.id}", headers=tutor.headers), 403)

    await client.delete(f"/api/v1/users/students/{student.id}", headers=tutor.headers)
    assert_error(await client.get(f"/internal/links/{tutor.id}/{student.id}", headers=service), 404)


async def test_an_admin_from_the_cli_sees_everyone(
    client: httpx.AsyncClient, api: Api, settings: UserServiceSettings
) -> None:
    email = unique_email("admin")
    account = AdminAccount(email=email, password=PASSWORD, full_name="Operator")
    assert "created admin" in await create_admin(settings, account)
    assert "already exists" in await create_admin(settings, account)

    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    admin = bearer(login.json()["access_token"])
    tutor = await api.tutor()
    student = await api.student_of(tutor)
    for someone in (tutor, student):
        assert (await _get_user(client, someone.id, admin)).status_code == 200
    # admins are never made over HTTP: a role in the registration body is ignored
    body = {"email": unique_email(), "password": PASSWORD, "full_name": "Sneaky", "role": "admin"}
    assert (await client.post("/api/v1/auth/register", json=body)).json()["user"]["role"] == "tutor"


async def test_contacts_are_each_persons_own_circle(client: httpx.AsyncClient, api: Api) -> None:
    tutor, other_tutor = await api.tutor(), await api.tutor()
    student, sibling = await api.student_of(tutor), await api.student_of(tutor)
    parent = await api.parent_of(tutor, student)
    await api.parent_of(other_tutor, await api.student_of(other_tutor))  # another tutor's family

    async def contacts(who: Any) -> set[tuple[str, str, str]]:
        response = await client.get("/api/v1/users/me/contacts", headers=who.headers)
        assert response.status_code == 200, response.text
        assert all("email" not in item for item in response.json()["items"])
        return {(item["id"], item["relation"], item["student_id"]) for item in response.json()["items"]}

    assert await contacts(tutor) == {
        (student.id, "student", student.id),
        (sibling.id, "student", sibling.id),
        (parent.id, "parent", student.id),
    }
    assert await contacts(student) == {(tutor.id, "tutor", student.id), (parent.id, "parent", student.id)}
    assert await contacts(parent) == {(student.id, "child", student.id), (tutor.id, "tutor", student.id)}
    assert await contacts(sibling) == {(tutor.id, "tutor", sibling.id)}

    await client.delete(f"/api/v1/users/students/{student.id}", headers=tutor.headers)
    assert await contacts(tutor) == {
        (sibling.id, "student", sibling.id),
    }
    assert await contacts(student) == {(parent.id, "parent", student.id)}
