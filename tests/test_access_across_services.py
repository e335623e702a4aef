"""Access in a second service, against the real user-service of the test fleet (DESIGN.md §4).

The "second service" is a small app built with the same ``create_app`` every
service uses, with one route guarded by ``AccessibleStudentId``. It runs in
this process with its own database (the shared tables only) and calls the
fleet's user-service as a real service account.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from fastapi import APIRouter

from shared.app import create_app
from shared.auth.access import AccessibleStudentId
from shared.config import ServiceSettings
from shared.events.bus import EventBus, InMemoryBus, RabbitMQBus
from shared.fleet import ServiceSpec
from shared.testing import infra
from shared.testing.events import eventually

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
async def probe_db_url(test_run_id: str) -> AsyncIterator[str]:
    name = f"repitbot_test_probe_{test_run_id}"
    url = await infra.create_scratch_database_with_shared_tables(name)
    yield url
    await infra.drop_database(name)


@asynccontextmanager
async def second_service(fleet, database_url: str, bus: EventBus, name: str) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    settings = ServiceSettings(
        env="test",
        service_name=name,
        database_url=database_url,
        rabbitmq_url=fleet.rabbit_url,
        user_service_url=fleet.url("user-service"),
        # a stand-in service borrows an account user-service knows
        service_client_id="user-service",
        service_client_secret=fleet.env["user-service"]["SERVICE_CLIENT_SECRET"],
    )
    router = APIRouter()

    @router.get("/students/{student_id}")
    async def read_student(student_id: AccessibleStudentId) -> dict[str, str]:
        return {"student_id": str(student_id)}

    app = create_app(settings, routers=[router], bus=bus, spec=ServiceSpec(name, "access_probe", 0))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def _register(users: httpx.AsyncClient, who: str, invite_code: str | None = None) -> dict:
    body = {"email": f"{who}-{uuid.uuid4().hex[:8]}@example.test", "password": PASSWORD, "full_name": who}
    if invite_code:
        body["invite_code"] = invite_code
    response = await users.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _bearer(account: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


async def _tutor_with_student(users: httpx.AsyncClient) -> tuple[dict, dict]:
    tutor = await _register(users, "tutor")
    invite = await users.post("/api/v1/users/invites", json={"role": "student"}, headers=_bearer(tutor))
    assert invite.status_code == 201, invite.text
    student = await _register(users, "student", invite.json()["code"])
    return tutor, student


async def _link_state(database_url: str, tutor: dict, student: dict) -> int | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT active FROM access_links WHERE principal_id = $1 AND student_id = $2",
            uuid.UUID(tutor["user"]["id"]),
            uuid.UUID(student["user"]["id"]),
        )
    finally:
        await conn.close()


async def test_access_works_right_after_an_invite_before_any_event_arrives(fleet, probe_db_url: str) -> None:
    # an in-process bus that nothing publishes to: the link event can never arrive here
    async with (
        fleet.client("user-service") as users,
        second_service(fleet, probe_db_url, InMemoryBus(), "access-probe") as probe,
    ):
        tutor, student = await _tutor_with_student(users)
        other_tutor, other_student = await _tutor_with_student(users)
        student_id = student["user"]["id"]
        assert await _link_state(probe_db_url, tutor, student) is None  # nothing known locally yet

        response = await probe.get(f"/students/{student_id}", headers=_bearer(tutor))
        assert response.status_code == 200, response.text
        # user-service's answer is kept, so the next request needs no call
        assert await _link_state(probe_db_url, tutor, student) == 1

        assert (await probe.get(f"/students/{student_id}", headers=_bearer(student))).status_code == 200
        for stranger in (other_tutor, other_student):
            refused = await probe.get(f"/students/{student_id}", headers=_bearer(stranger))
            assert refused.status_code == 404
            assert refused.json()["error"]["code"] == "not_found"
        assert (await probe.get(f"/students/{student_id}")).status_code == 401


async def test_link_events_reach_the_second_service_and_unlinking_ends_access(fleet, probe_db_url: str) -> None:
    bus = RabbitMQBus(
        fleet.rabbit_url, service="access-probe-events", exchange="repitbot.events", delivery_limit=5, publish_timeout=5
    )
    async with (
        fleet.client("user-service") as users,
        second_service(fleet, probe_db_url, bus, "access-probe-events") as probe,
    ):
        await eventually(lambda: bus.is_connected, what="the probe's queue is bound")
        tutor, student = await _tutor_with_student(users)

        async def linked() -> bool:
            return await _link_state(probe_db_url, tutor, student) == 1

        await eventually(linked, what="student.linked applied through the inbox")

        unlink = await users.delete(f"/api/v1/users/students/{student['user']['id']}", headers=_bearer(tutor))
        assert unlink.status_code == 204, unlink.text

        async def unlinked() -> bool:
            return await _link_state(probe_db_url, tutor, student) == 0

        await eventually(unlinked, what="student.unlinked applied through the inbox")
        response = await probe.get(f"/students/{student['user']['id']}", headers=_bearer(tutor))
        assert response.status_code == 404
