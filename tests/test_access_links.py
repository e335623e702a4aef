"""Who may see which student: local links from events, user-service as the fallback, 404 otherwise."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select

from shared.auth.access import ACCESS_LINK_HANDLERS, AccessibleStudentId, AccessResolver, StudentAccessDep
from shared.auth.deps import Caller
from shared.auth.jwt import Claims, TokenVerifier
from shared.clock import FakeClock
from shared.db import Database
from shared.errors import NotFound, ServiceUnavailable
from shared.events.catalogue import StudentLinked, StudentUnlinked
from shared.events.envelope import Envelope
from shared.http import ServiceClient
from shared.tables import access_links
from shared.testing.tokens import TokenFactory

# the fixtures module is also imported for its helpers: let pytest rewrite its asserts first
pytest.register_assert_rewrite("tests.auth_fixtures")
from tests.auth_fixtures import FakeUserService, LocalServer, client_for, make_test_app, service_settings  # noqa: E402

pytest_plugins = ["tests.auth_fixtures"]


class LessonIn(BaseModel):
    student_id: uuid.UUID


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def resolver(fake_user_service: FakeUserService, clock: FakeClock) -> AsyncIterator[AccessResolver]:
    http = ServiceClient(service_settings(fake_user_service.url), clock=clock, backoff=0)
    yield AccessResolver(http)
    await http.aclose()


@pytest.fixture
def app(resolver: AccessResolver, shared_database: Database, tokens: TokenFactory) -> FastAPI:
    verifier = TokenVerifier(tokens.key_source, issuer=tokens.issuer, audience=tokens.audience)
    app = make_test_app(verifier=verifier, db=shared_database, access=resolver)

    @app.get("/students/{student_id}/profile")
    async def profile(student_id: AccessibleStudentId) -> dict[str, str]:
        return {"student_id": str(student_id)}

    @app.post("/lessons", status_code=201)
    async def schedule(body: LessonIn, access: StudentAccessDep) -> dict[str, str]:
        await access.ensure(body.student_id)
        return {"student_id": str(body.student_id)}

    return app


def link_event(kind: type[StudentLinked | StudentUnlinked], principal: uuid.UUID, student: uuid.UUID,
               relation: str, occurred_at: datetime) -> Envelope:  # fmt: skip
    tutor = principal if relation == "tutor" else uuid.uuid4()
    payload = kind(student_id=student, principal_id=principal, relation=relation, tutor_id=tutor)
    return Envelope.wrap(payload, producer="user-service", correlation_id="test", occurred_at=occurred_at)


async def apply(database: Database, event: Envelope) -> None:
    async with database.transaction() as session:
        await ACCESS_LINK_HANDLERS[event.event_type](session, event)


async def link_state(database: Database, principal: uuid.UUID, student: uuid.UUID) -> tuple[Any, ...] | None:
    async with database.transaction() as session:
        row = (
            await session.execute(
                select(access_links.c.active, access_links.c.updated_at).where(
                    access_links.c.principal_id == principal, access_links.c.student_id == student
                )
            )
        ).one_or_none()
    return None if row is None else tuple(row)


async def get_profile(app: FastAPI, tokens: TokenFactory, caller_id: Any, role: str, student: Any) -> int:
    async with client_for(app) as client:
        response = await client.get(f"/students/{student}/profile", headers=tokens.auth_header(caller_id, role))
    if response.status_code == 404:
        assert response.json()["error"]["code"] == "not_found"
    return response.status_code


async def test_a_tutor_sees_their_student_and_not_another_tutors(
    app: FastAPI, tokens: TokenFactory, shared_database: Database, clock: FakeClock
) -> None:
    tutor, other_tutor, student, others_student = (uuid.uuid4() for _ in range(4))
    await apply(shared_database, link_event(StudentLinked, tutor, student, "tutor", clock.now()))
    await apply(shared_database, link_event(StudentLinked, other_tutor, others_student, "tutor", clock.now()))
    assert await get_profile(app, tokens, tutor, "tutor", student) == 200
    assert await get_profile(app, tokens, tutor, "tutor", others_student) == 404
    assert await get_profile(app, tokens, tutor, "tutor", uuid.uuid4()) == 404  # unknown: the same answer


async def test_a_student_sees_only_themself(app: FastAPI, tokens: TokenFactory) -> None:
    student = uuid.uuid4()
    assert await get_profile(app, tokens, student, "student", student) == 200
    assert await get_profile(app, tokens, student, "student", uuid.uuid4()) == 404


async def test_a_parent_sees_a_linked_child_only(
    app: FastAPI, tokens: TokenFactory, shared_database: Database, clock: FakeClock
) -> None:
    parent, child, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await apply(shared_database, link_event(StudentLinked, parent, child, "parent", clock.now()))
    assert await get_profile(app, tokens, parent, "parent", child) == 200
    assert await get_profile(app, tokens, parent, "parent", stranger) == 404
    # a parent link does not make the parent a tutor of the child
    assert await get_profile(app, tokens, parent, "tutor", child) == 404


async def test_admins_and_service_accounts_see_everyone(app: FastAPI, tokens: TokenFactory) -> None:
    student = uuid.uuid4()
    assert await get_profile(app, tokens, uuid.uuid4(), "admin", student) == 200
    assert await get_profile(app, tokens, "telegram-bot", "service", student) == 200


async def test_a_body_field_is_checked_through_the_dependency(
    app: FastAPI, tokens: TokenFactory, shared_database: Database, clock: FakeClock
) -> None:
    tutor, student = uuid.uuid4(), uuid.uuid4()
    await apply(shared_database, link_event(StudentLinked, tutor, student, "tutor", clock.now()))
    async with client_for(app) as client:
        mine = await client.post(
            "/lessons", json={"student_id": str(student)}, headers=tokens.auth_header(tutor, "tutor")
        )
        other = await client.post(
            "/lessons", json={"student_id": str(uuid.uuid4())}, headers=tokens.auth_header(tutor, "tutor")
        )
    assert (mine.status_code, other.status_code) == (201, 404)


async def test_unlink_revokes_and_a_late_older_event_never_reactivates(
    app: FastAPI, tokens: TokenFactory, shared_database: Database, clock: FakeClock
) -> None:
    tutor, student = uuid.uuid4(), uuid.uuid4()
    linked_at = clock.now()
    unlinked_at = linked_at + timedelta(minutes=5)
    # delivered out of order: the unlink first, then the older link
    await apply(shared_database, link_event(StudentUnlinked, tutor, student, "tutor", unlinked_at))
    await apply(shared_database, link_event(StudentLinked, tutor, student, "tutor", linked_at))
    assert await link_state(shared_database, tutor, student) == (0, unlinked_at)
    assert await get_profile(app, tokens, tutor, "tutor", student) == 404

    relinked_at = unlinked_at + timedelta(minutes=5)
    await apply(shared_database, link_event(StudentLinked, tutor, student, "tutor", relinked_at))
    assert await link_state(shared_database, tutor, student) == (1, relinked_at)
    assert await get_profile(app, tokens, tutor, "tutor", student) == 200

    await apply(shared_database, link_event(StudentUnlinked, tutor, student, "tutor", relinked_at + timedelta(1)))
    assert await get_profile(app, tokens, tutor, "tutor", student) == 404


async def test_a_local_miss_asks_user_service_and_caches_a_positive_answer(
    app: FastAPI, tokens: TokenFactory, shared_database: Database, fake_user_service: FakeUserService, clock: FakeClock
) -> None:
    tutor, student = uuid.uuid4(), uuid.uuid4()
    fake_user_service.link(tutor, student, "tutor")  # redeemed invite; the event is still on its way
    assert await get_profile(app, tokens, tutor, "tutor", student) == 200
    assert fake_user_service.hits["links"] == 1
    assert await link_state(shared_database, tutor, student) == (1, clock.now())

    assert await get_profile(app, tokens, tutor, "tutor", student) == 200
    assert fake_user_service.hits["links"] == 1  # answered locally now

    # the late student.linked changes nothing; an unlink after our question still wins
    await apply(shared_database, link_event(StudentLinked, tutor, student, "tutor", clock.now() - timedelta(1)))
    assert await link_state(shared_database, tutor, student) == (1, clock.now())
    await apply(shared_database, link_event(StudentUnlinked, tutor, student, "tutor", clock.now() + timedelta(1)))
    fake_user_service.links.clear()
    assert await get_profile(app, tokens, tutor, "tutor", student) == 404


async def test_a_negative_answer_is_not_cached(
    app: FastAPI, tokens: TokenFactory, shared_database: Database, fake_user_service: FakeUserService
) -> None:
    tutor, student = uuid.uuid4(), uuid.uuid4()
    assert await get_profile(app, tokens, tutor, "tutor", student) == 404
    assert await link_state(shared_database, tutor, student) is None
    fake_user_service.link(tutor, student, "tutor")
    assert await get_profile(app, tokens, tutor, "tutor", student) == 200
    assert fake_user_service.hits["links"] == 2


def caller(role: str, caller_id: Any) -> Caller:
    claims = Claims(sub=str(caller_id), role=role, jti=None, exp=0, iat=None, iss="i", aud="a", raw={})
    return Caller(id=str(caller_id), role=role, claims=claims)


async def test_user_service_down_on_a_miss_is_503_not_404(shared_database: Database, clock: FakeClock) -> None:
    server = LocalServer(FastAPI()).start()
    server.stop()  # nothing listens there any more
    http = ServiceClient(service_settings(server.url), clock=clock, backoff=0)
    resolver = AccessResolver(http)
    try:
        async with shared_database.transaction() as session:
            with pytest.raises(ServiceUnavailable):
                await resolver.ensure_student_access(session, caller("tutor", uuid.uuid4()), uuid.uuid4())
    finally:
        await http.aclose()


async def test_ids_that_are_not_uuids_see_nothing(resolver: AccessResolver, shared_database: Database) -> None:
    async with shared_database.transaction() as session:
        assert not await resolver.can_access(session, caller("student", "x"), "not-a-uuid")
        assert not await resolver.can_access(session, caller("tutor", "telegram-bot"), uuid.uuid4())
        with pytest.raises(NotFound):
            await resolver.ensure_student_access(session, caller("tutor", uuid.uuid4()), "not-a-uuid")
