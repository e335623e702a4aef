"""Registration, sign-in, refresh rotation with reuse detection, sign-out, tokens and the JWKS."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from jose import jwt

from services.user_service.domain.tokens import token_digest
from services.user_service.tests.conftest import (
    PASSWORD,
    Api,
    assert_error,
    bearer,
    outbox_payloads,
    unique_email,
    unique_telegram_id,
)
from shared.auth.jwt import StaticKeySource, TokenVerifier


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def _refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


async def test_register_without_invite_makes_a_tutor_and_announces_it(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    email = unique_email("Tutor").upper()
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "  Anna Petrovna "}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    user = body["user"]
    assert user["role"] == "tutor"
    assert user["email"] == email.lower()
    assert user["full_name"] == "Anna Petrovna"
    assert (user["timezone"], user["language"], user["telegram_id"]) == ("Europe/Moscow", "ru", None)

    [event] = await outbox_payloads(db, "user.registered", user_id=user["id"])
    assert event["role"] == "tutor" and event["email"] == email.lower() and event["tutor_id"] is None
    stored = await db.fetchval("SELECT password_hash FROM users WHERE id = $1::uuid", user["id"])
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_refresh_rotates_and_reusing_a_rotated_token_revokes_the_family(
    client: httpx.AsyncClient, api: Api, db: asyncpg.Pool
) -> None:
    tutor = await api.tutor()
    login = await _login(client, tutor.email or "")
    assert login.status_code == 200, login.text
    first = login.json()["refresh_token"]

    rotated = await _refresh(client, first)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first
    assert (await client.get("/api/v1/users/me", headers=bearer(rotated.json()["access_token"]))).status_code == 200

    assert_error(await _refresh(client, first), 401, "refresh_token_reused")
    assert_error(await _refresh(client, second), 401, "invalid_refresh_token")  # the whole family is revoked

    family = await db.fetchval("SELECT family_id FROM refresh_tokens WHERE token_hash = $1", token_digest(first))
    states = await db.fetch("SELECT revoked_at FROM refresh_tokens WHERE family_id = $1", family)
    assert len(states) == 2 and all(row["revoked_at"] is not None for row in states)
    # another sign-in of the same user (registration's) is a different family, untouched
    assert (await _refresh(client, tutor.refresh_token)).status_code == 200


async def test_logout_revokes_the_family(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    rotated = (await _refresh(client, tutor.refresh_token)).json()["refresh_token"]
    response = await client.post("/api/v1/auth/logout", json={"refresh_token": rotated})
    assert response.status_code == 204
    assert_error(await _refresh(client, rotated), 401, "invalid_refresh_token")
    # signing out twice, or with an unknown token, is not an error
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": rotated})).status_code == 204
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": "unknown"})).status_code == 204


async def test_an_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    assert_error(await _refresh(client, "not-a-token-we-issued"), 401, "invalid_refresh_token")


async def test_login_answers_the_same_for_an_unknown_email_and_a_wrong_password(
    client: httpx.AsyncClient, api: Api
) -> None:
    tutor = await api.tutor()
    wrong_password = assert_error(await _login(client, tutor.email or "", "not the password"), 401)
    unknown_email = assert_error(await _login(client, unique_email("nobody")), 401)
    assert wrong_password == {**unknown_email, "correlation_id": wrong_password["correlation_id"]}
    assert wrong_password["code"] == "invalid_credentials"
    # the email is matched case-insensitively
    assert (await _login(client, (tutor.email or "").upper())).status_code == 200


async def test_issued_tokens_verify_against_the_published_jwks(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    [key] = jwks["keys"]
    assert {key["kty"], key["use"], key["alg"]} == {"RSA", "sig", "RS256"}
    assert jwt.get_unverified_header(tutor.access_token)["kid"] == key["kid"]

    # a verifier that knows nothing but the published JWKS accepts the token
    verifier = TokenVerifier(StaticKeySource.from_jwks(jwks), issuer="repitbot-user-service", audience="repitbot")
    claims = await verifier.verify(tutor.access_token)
    assert (claims.sub, claims.role, claims.raw["typ"]) == (tutor.id, "tutor", "access")
    assert claims.exp - (claims.iat or 0) == 900 and claims.jti

    tampered = tutor.access_token[:-4] + ("AAAA" if not tutor.access_token.endswith("AAAA") else "BBBB")
    assert_error(await client.get("/api/v1/users/me", headers=bearer(tampered)), 401)
    assert_error(await client.get("/api/v1/users/me"), 401)


async def test_client_credentials_give_service_tokens_to_known_clients_only(
    client: httpx.AsyncClient, api: Api
) -> None:
    token = await api.service_token("telegram-bot", "bot-secret-for-the-tests")
    claims = jwt.get_unverified_claims(token)
    assert (claims["sub"], claims["role"], claims["typ"]) == ("telegram-bot", "service", "access")

    def grant(client_id: str, client_secret: str) -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}

    wrong_secret = assert_error(await client.post("/api/v1/auth/token", json=grant("telegram-bot", "guess")), 401)
    unknown = assert_error(await client.post("/api/v1/auth/token", json=grant("stranger", "guess")), 401)
    assert wrong_secret["code"] == unknown["code"] == "invalid_client"
    assert wrong_secret["message"] == unknown["message"]
    other_grant = {**grant("telegram-bot", "bot-secret-for-the-tests"), "grant_type": "password"}
    assert_error(await client.post("/api/v1/auth/token", json=other_grant), 422)


async def test_telegram_sign_in_takes_the_bots_token_only(client: httpx.AsyncClient, api: Api) -> None:
    body = {"telegram_id": unique_telegram_id(), "full_name": "Tg Tutor"}
    tutor = await api.tutor()

    assert_error(await client.post("/api/v1/auth/telegram", json=body), 401)
    assert_error(await client.post("/api/v1/auth/telegram", json=body, headers=tutor.headers), 403)
    assert_error(await client.post("/api/v1/auth/telegram", json=body, headers=await api.lesson_service_headers()), 403)

    bot = await api.bot_headers()
    first = await client.post("/api/v1/auth/telegram", json=body, headers=bot)
    assert first.status_code == 201, first.text
    user = first.json()["user"]
    assert (user["role"], user["telegram_id"], user["email"]) == ("tutor", body["telegram_id"], None)

    again = await client.post("/api/v1/auth/telegram", json={**body, "full_name": "Renamed in Telegram"}, headers=bot)
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] == user["id"]
    assert again.json()["user"]["full_name"] == "Tg Tutor"  # the profile is the user's, not Telegram's
    me = await client.get("/api/v1/users/me", headers=bearer(again.json()["access_token"]))
    assert me.json()["id"] == user["id"]


async def test_two_simultaneous_first_starts_make_one_account(client: httpx.AsyncClient, api: Api) -> None:
    tutor = await api.tutor()
    invite = await api.invite(tutor)
    bot = await api.bot_headers()
    body = {"telegram_id": unique_telegram_id(), "full_name": "Double Tap", "invite_code": invite["code"]}

    answers = await asyncio.gather(*(client.post("/api/v1/auth/telegram", json=body, headers=bot) for _ in range(2)))
    assert sorted(answer.status_code for answer in answers) == [200, 201], [answer.text for answer in answers]
    assert len({answer.json()["user"]["id"] for answer in answers}) == 1
    students = (await client.get("/api/v1/users/students", headers=tutor.headers)).json()["items"]
    assert len(students) == 1
