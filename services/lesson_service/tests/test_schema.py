"""The migration as the service's own role (no superuser): btree_gist is a trusted extension, so the
exclusion constraint that forbids double bookings needs no provisioning change; and the API is documented."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from shared.fleet import by_name
from shared.migrations import upgrade
from shared.testing import infra


async def test_the_services_own_role_can_migrate_and_create_btree_gist(run_id: str) -> None:
    name = role = f"repitbot_test_lesson_role_{run_id}"
    url = await infra.create_database(name, owner=role)  # a LOGIN role, NOSUPERUSER, owning its database
    try:
        await asyncio.to_thread(upgrade, by_name("lesson-service"), url)
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
            assert await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'") == 1
            constraint = await conn.fetchval(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ex_lessons_tutor_no_overlap'"
            )
            assert "EXCLUDE USING gist" in constraint and "<> 'cancelled'" in constraint
        finally:
            await conn.close()
    finally:
        await infra.drop_database(name)
        admin = await asyncpg.connect(infra.PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()


async def test_the_lesson_api_is_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in (
        "/api/v1/lessons",
        "/api/v1/lessons/series",
        "/api/v1/lessons/schedule",
        "/api/v1/lessons/{lesson_id}/complete",
        "/api/v1/lessons/{lesson_id}/cancel",
        "/api/v1/lessons/plans/{student_id}",
        "/api/v1/lessons/calendar.ics",
    ):
        assert path in document["paths"], path
