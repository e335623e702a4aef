"""Bad input answers 4xx in the one error shape and writes nothing."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from services.user_service.tests.conftest import PASSWORD, Api, assert_error, unique_email


async def _row_counts(db: asyncpg.Pool) -> tuple[int, int, int]:
    return (
        await db.fetchval("SELECT count(*) FROM users"),
        await db.fetchval("SELECT count(*) FROM refresh_tokens"),
        await db.fetchval("SELECT count(*) FROM outbox_events"),
    )


def _register(**overrides: object) -> dict[str, object]:
    body = {"email": unique_email(), "password": PASSWORD, "full_name": "Anna"}
    return {key: value for key, value in {**body, **overrides}.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_register(password=None), "password"),
        (_register(email=None), "email"),
        (_register(full_name=None), "full_name"),
        (_register(full_name="x" * 201), "full_name"),
        (_register(full_name="   "), "full_name"),
        (_register(email="a" * 250 + "@example.com"), "email"),
        (_register(email="not-an-email"), "email"),
        (_register(password="short"), "password"),
        (_register(password="p" * 129), "password"),
        (_register(timezone="Mars/Olympus_Mons"), "timezone"),
        (_register(language="de"), "language"),
        (_register(invite_code="has spaces"), "invite_code"),
        (_register(invite_code="x" * 65), "invite_code"),
    ],
)
async def test_invalid_registrations_name_the_field_and_write_nothing(
    client: httpx.AsyncClient, db: asyncpg.Pool, body: dict[str, object], field: str
) -> None:
    before = await _row_counts(db)
    error = assert_error(await client.post("/api/v1/auth/register", json=body), 422, "validation_error")
    assert field in {detail["field"] for detail in error["details"]}
    assert field in error["message"]
    assert await _row_counts(db) == before


async def test_malformed_json_is_400_and_writes_nothing(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    before = await _row_counts(db)
    response = await client.post(
        "/api/v1/auth/register", content=b'{"email": "a@example.com",', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")
    assert await _row_counts(db) == before


async def test_a_duplicate_email_is_409_whatever_its_case(
    client: httpx.AsyncClient, api: Api, db: asyncpg.Pool
) -> None:
    tutor = await api.tutor()
    before = await _row_counts(db)
    response = await client.post("/api/v1/auth/register", json=_register(email=(tutor.email or "").upper()))
    assert_error(response, 409, "email_taken")
    assert await _row_counts(db) == before


async def test_unknown_fields_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json=_register(favourite_colour="green", is_active=False))
    assert response.status_code == 201, response.text


async def test_an_oversized_body_is_413(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    before = await _row_counts(db)
    response = await client.post("/api/v1/auth/register", json=_register(full_name="x" * 2_000_000))
    assert_error(response, 413, "payload_too_large")
    assert await _row_counts(db) == before
