"""GET and PATCH /api/v1/users/me."""

from __future__ import annotations

import asyncpg
import httpx

from services.user_service.tests.conftest import Api, assert_error, outbox_payloads


async def test_me_shows_the_profile(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.register(full_name="Anna Petrovna", timezone="Asia/Yekaterinburg", language="en")
    me = (await client.get("/api/v1/users/me", headers=tutor.headers)).json()
    assert me == {
        "id": tutor.id,
        "email": tutor.email,
        "full_name": "Anna Petrovna",
        "role": "tutor",
        "timezone": "Asia/Yekaterinburg",
        "language": "en",
        "telegram_id": None,
    }


async def test_a_service_token_has_no_me(client: httpx.AsyncClient, api: Api) -> None:
    assert_error(await client.get("/api/v1/users/me", headers=await api.bot_headers()), 403)


async def test_patch_me_changes_the_given_fields_and_announces_it(
    client: httpx.AsyncClient, api: Api, db: asyncpg.Pool
) -> None:
    tutor = await api.tutor()
    response = await client.patch(
        "/api/v1/users/me", json={"timezone": "Europe/Berlin", "language": "en"}, headers=tutor.headers
    )
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["timezone"], me["language"], me["full_name"]) == ("Europe/Berlin", "en", "Anna Petrovna")
    [event] = await outbox_payloads(db, "user.updated", user_id=tutor.id)
    assert (event["timezone"], event["language"]) == ("Europe/Berlin", "en")

    # the same values again change nothing and announce nothing
    await client.patch("/api/v1/users/me", json={"timezone": "Europe/Berlin"}, headers=tutor.headers)
    assert len(await outbox_payloads(db, "user.updated", user_id=tutor.id)) == 1


async def test_patch_me_refuses_bad_values_and_changes_nothing(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    for body, field in (
        ({"timezone": "Moscow"}, "timezone"),
        ({"timezone": "Europe/Moscow", "language": "fr"}, "language"),
        ({"full_name": None}, "full_name"),
        ({"full_name": "y" * 201}, "full_name"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
    ):
        error = assert_error(await client.patch("/api/v1/users/me", json=body, headers=tutor.headers), 422)
        assert error["details"][0]["field"] == field
    me = (await client.get("/api/v1/users/me", headers=tutor.headers)).json()
    assert (me["timezone"], me["language"], me["full_name"]) == ("Europe/Moscow", "ru", "Anna Petrovna")
