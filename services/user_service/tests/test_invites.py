"""Invites: one-time, expiring, for students and for parents of the tutor's own students."""

from __future__ import annotations

import re

import asyncpg
import httpx

from services.user_service.domain.tokens import token_digest
from services.user_service.tests.conftest import (
    BOT_USERNAME,
    PASSWORD,
    Api,
    assert_error,
    bearer,
    outbox_payloads,
    unique_email,
    unique_telegram_id,
)


async def _count_users(db: asyncpg.Pool) -> int:
    return await db.fetchval("SELECT count(*) FROM users")


async def test_an_invite_is_a_telegram_deep_link(api: Api) -> None:
    tutor = await api.tutor()
    invite = await api.invite(tutor)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", invite["code"])
    assert invite["deep_link"] == f"https://t.me/{BOT_USERNAME}?start={invite['code']}"
    assert invite["expires_at"].endswith("Z") or "+" in invite["expires_at"]


async def test_an_invite_links_the_student_and_works_once(
    client: httpx.AsyncClient, api: Api, db: asyncpg.Pool
) -> None:
    tutor = await api.tutor()
    invite = await api.invite(tutor)
    student = await api.register(invite_code=invite["code"], full_name="Petya Ivanov")
    assert student.role == "student"

    students = (await client.get("/api/v1/users/students", headers=tutor.headers)).json()
    assert [item["id"] for item in students["items"]] == [student.id]

    [registered] = await outbox_payloads(db, "user.registered", user_id=student.id)
    assert registered["role"] == "student" and registered["tutor_id"] == tutor.id
    [linked] = await outbox_payloads(db, "student.linked", student_id=student.id)
    assert linked == {"student_id": student.id, "principal_id": tutor.id, "relation": "tutor", "tutor_id": tutor.id}

    users_before = await _count_users(db)
    second = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Twice", "invite_code": invite["code"]},
    )
    assert_error(second, 409, "invite_used")
    assert await _count_users(db) == users_before


async def test_an_expired_invite_is_refused(client: httpx.AsyncClient, api: Api, db: asyncpg.Pool) -> None:
    tutor = await api.tutor()
    invite = await api.invite(tutor)
    await db.execute(
        "UPDATE invites SET expires_at = now() - interval '1 second' WHERE code_hash = $1", token_digest(invite["code"])
    )
    users_before = await _count_users(db)
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Late", "invite_code": invite["code"]},
    )
    assert_error(response, 409, "invite_expired")
    assert await _count_users(db) == users_before


async def test_an_unknown_invite_code_names_the_field(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    users_before = await _count_users(db)
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "X", "invite_code": "no-such-code"},
    )
    error = assert_error(response, 422, "invite_invalid")
    assert error["details"][0]["field"] == "invite_code"
    assert await _count_users(db) == users_before


async def test_a_parent_joins_for_one_student_and_a_child_has_at_most_two_parents(
    client: httpx.AsyncClient, api: Api, db: asyncpg.Pool
) -> None:
    tutor = await api.tutor()
    child, other_child = await api.student_of(tutor), await api.student_of(tutor)
    mother = await api.parent_of(tutor, child)
    assert mother.role == "parent"
    [linked] = await outbox_payloads(db, "student.linked", principal_id=mother.id)
    assert linked == {"student_id": child.id, "principal_id": mother.id, "relation": "parent", "tutor_id": tutor.id}

    assert (await client.get(f"/api/v1/users/{child.id}", headers=mother.headers)).status_code == 200
    assert_error(await client.get(f"/api/v1/users/{other_child.id}", headers=mother.headers), 404)
    assert (await client.get(f"/api/v1/users/{mother.id}", headers=tutor.headers)).status_code == 200
    assert_error(await client.get(f"/api/v1/users/{mother.id}", headers=child.headers), 404)

    await api.parent_of(tutor, child)  # the second parent
    third = await api.invite(tutor, "parent", child.id)
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Third", "invite_code": third["code"]},
    )
    assert_error(response, 409, "too_many_parents")

    # one parent, several children (this one signs in through the bot)
    youngest = await api.student_of(tutor)
    bot = await api.bot_headers()
    father = {"telegram_id": unique_telegram_id(), "full_name": "Oleg Ivanov"}
    for expected_status, kid in ((201, other_child), (200, youngest)):
        invite = await api.invite(tutor, "parent", kid.id)
        response = await client.post(
            "/api/v1/auth/telegram", json={**father, "invite_code": invite["code"]}, headers=bot
        )
        assert response.status_code == expected_status, response.text
        assert response.json()["user"]["role"] == "parent"
    father_headers = bearer(response.json()["access_token"])
    for kid in (other_child, youngest):
        assert (await client.get(f"/api/v1/users/{kid.id}", headers=father_headers)).status_code == 200
    assert_error(await client.get(f"/api/v1/users/{child.id}", headers=father_headers), 404)


async def test_invite_rules(client: httpx.AsyncClient, api: Api) -> None:
    tutor, other_tutor = await api.tutor(), await api.tutor()
    student = await api.student_of(tutor)
    stranger = await api.student_of(other_tutor)

    def post(body: dict[str, object], headers: dict[str, str]) -> object:
        return client.post("/api/v1/users/invites", json=body, headers=headers)

    missing = assert_error(await post({"role": "parent"}, tutor.headers), 422)
    assert missing["details"][0]["field"] == "student_id"
    assert_error(await post({"role": "student", "student_id": student.id}, tutor.headers), 422)
    assert_error(await post({"role": "parent", "student_id": stranger.id}, tutor.headers), 404)
    assert_error(await post({"role": "tutor"}, tutor.headers), 422)
    assert_error(await post({"role": "student"}, student.headers), 403)
    assert_error(await client.post("/api/v1/users/invites", json={"role": "student"}), 401)


async def test_a_parent_invite_dies_with_the_tutors_link(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    student = await api.student_of(tutor)
    invite = await api.invite(tutor, "parent", student.id)
    assert (await client.delete(f"/api/v1/users/students/{student.id}", headers=tutor.headers)).status_code == 204
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Late", "invite_code": invite["code"]},
    )
    assert_error(response, 409, "invite_revoked")


async def test_the_bot_redeems_an_invite_for_a_telegram_user_once(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    invite = await api.invite(tutor)
    bot = await api.bot_headers()
    body = {"telegram_id": unique_telegram_id(), "full_name": "Vasya", "language": "en", "invite_code": invite["code"]}

    first = await client.post("/api/v1/auth/telegram", json=body, headers=bot)
    assert first.status_code == 201, first.text
    student = first.json()["user"]
    assert (student["role"], student["language"]) == ("student", "en")
    students = (await client.get("/api/v1/users/students", headers=tutor.headers)).json()["items"]
    assert [item["id"] for item in students] == [student["id"]]

    # the bot repeating the same /start is harmless; someone else cannot use the code
    repeated = await client.post("/api/v1/auth/telegram", json=body, headers=bot)
    assert repeated.status_code == 200 and repeated.json()["user"]["id"] == student["id"]
    other = await client.post("/api/v1/auth/telegram", json={**body, "telegram_id": unique_telegram_id()}, headers=bot)
    assert_error(other, 409, "invite_used")

    # an existing account of another role cannot take a student invite
    tutor_on_telegram = {"telegram_id": unique_telegram_id(), "full_name": "Tutor"}
    assert (await client.post("/api/v1/auth/telegram", json=tutor_on_telegram, headers=bot)).status_code == 201
    fresh = await api.invite(tutor)
    mismatch = await client.post(
        "/api/v1/auth/telegram", json={**tutor_on_telegram, "invite_code": fresh["code"]}, headers=bot
    )
    assert_error(mismatch, 409, "invite_role_mismatch")


async def test_a_retried_invite_with_an_idempotency_key_is_the_same_invite(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    headers = {**tutor.headers, "Idempotency-Key": "invite-retry-1"}
    first = await client.post("/api/v1/users/invites", json={"role": "student"}, headers=headers)
    again = await client.post("/api/v1/users/invites", json={"role": "student"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    student = await api.student_of(tutor)
    other_body = await client.post(
        "/api/v1/users/invites", json={"role": "parent", "student_id": student.id}, headers=headers
    )
    assert_error(other_body, 422)
