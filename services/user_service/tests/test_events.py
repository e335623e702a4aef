"""The link events leave through the outbox and RabbitMQ and are understood by a consumer: user-service's
own ``access_links`` table (kept by shared/ from those events, like every service's) follows them."""

from __future__ import annotations

import asyncpg
import httpx

from services.user_service.tests.conftest import Api
from shared.testing.events import eventually


async def _link_state(db: asyncpg.Pool, principal_id: str, student_id: str) -> int | None:
    return await db.fetchval(
        "SELECT active FROM access_links WHERE principal_id = $1::uuid AND student_id = $2::uuid",
        principal_id,
        student_id,
    )


async def test_link_events_reach_consumers(client: httpx.AsyncClient, api: Api, db: asyncpg.Pool) -> None:
    tutor = await api.tutor()
    student = await api.student_of(tutor)

    async def linked() -> bool:
        return await _link_state(db, tutor.id, student.id) == 1

    await eventually(linked, what="student.linked applied to access_links")

    assert (await client.delete(f"/api/v1/users/students/{student.id}", headers=tutor.headers)).status_code == 204

    async def unlinked() -> bool:
        return await _link_state(db, tutor.id, student.id) == 0

    await eventually(unlinked, what="student.unlinked applied to access_links")

    async def published() -> list[asyncpg.Record]:
        return await db.fetch(
            "SELECT event_type, envelope->>'producer' AS producer FROM outbox_events"
            " WHERE published_at IS NOT NULL AND envelope->'payload'->>'student_id' = $1",
            student.id,
        )

    async def both_marked() -> bool:
        return len(await published()) == 2

    # the relay marks its rows behind the publishing (decision 0024): consumed may come first
    await eventually(both_marked, what="both rows marked published")
    rows = await published()
    assert sorted(row["event_type"] for row in rows) == ["student.linked", "student.unlinked"]
    assert {row["producer"] for row in rows} == {"user-service"}
