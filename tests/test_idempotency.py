"""Idempotency-Key on POSTs, against real PostgreSQL: one effect per key, the first answer replayed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text

from shared.auth.deps import CurrentUser
from shared.auth.jwt import TokenVerifier
from shared.db import Database, SessionDep
from shared.errors import Conflict
from shared.idempotency import IdempotentRoute
from shared.testing.tokens import TokenFactory

# the fixtures module is also imported for its helpers: let pytest rewrite its asserts first
pytest.register_assert_rewrite("tests.auth_fixtures")
from tests.auth_fixtures import client_for, make_test_app  # noqa: E402

pytest_plugins = ["tests.auth_fixtures"]

# a stand-in for a service's own table, created in the scratch database for these tests only
effects = Table(
    "idempotency_test_top_ups",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("reference", String(64), nullable=False),
    Column("amount", Integer, nullable=False),
)


class TopUpIn(BaseModel):
    reference: str
    amount: int
    hold: bool = False  # wait at the gate, holding the key's row lock
    fail: str | None = None  # "raise" or "return": answer with an error after making the change


@pytest.fixture(scope="module")
async def database(shared_database: Database) -> Database:
    async with shared_database.engine.begin() as conn:
        await conn.run_sync(effects.metadata.create_all)
    return shared_database


@pytest.fixture
def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
def app(database: Database, tokens: TokenFactory, gate: asyncio.Event) -> FastAPI:
    verifier = TokenVerifier(tokens.key_source, issuer=tokens.issuer, audience=tokens.audience)
    app = make_test_app(verifier=verifier, db=database)
    router = APIRouter(route_class=IdempotentRoute)

    @router.post("/top-ups", status_code=201)
    async def top_up(body: TopUpIn, caller: CurrentUser, session: SessionDep, response: Response) -> Any:
        new_id = await session.scalar(
            effects.insert().values(reference=body.reference, amount=body.amount).returning(effects.c.id)
        )
        if body.hold:
            await asyncio.wait_for(gate.wait(), timeout=10)
        if body.fail == "raise":
            raise Conflict("Declined")
        if body.fail == "return":
            return JSONResponse({"declined": True}, status_code=402)
        response.headers["Location"] = f"/top-ups/{new_id}"
        return {"id": new_id, "amount": body.amount, "by": caller.id}

    @router.post("/other", status_code=201)
    async def other(caller: CurrentUser) -> dict[str, str]:
        return {"ok": "yes"}

    @router.post("/public", status_code=201)
    async def public(body: TopUpIn, session: SessionDep) -> dict[str, Any]:
        await session.execute(effects.insert().values(reference=body.reference, amount=body.amount))
        return {"ok": True}

    app.include_router(router)
    return app


async def effect_count(database: Database, reference: str) -> int:
    async with database.transaction() as session:
        return await session.scalar(select(func.count()).select_from(effects).where(effects.c.reference == reference))


def request_headers(tokens: TokenFactory, caller_id: str, key: str | None) -> dict[str, str]:
    headers = tokens.auth_header(caller_id, "tutor")
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def post(
    client: httpx.AsyncClient, tokens: TokenFactory, body: dict[str, Any], *, key: str | None,
    caller_id: str = "c0ffee00-0000-4000-8000-000000000001", path: str = "/top-ups",
) -> httpx.Response:  # fmt: skip
    return await client.post(path, json=body, headers=request_headers(tokens, caller_id, key))


def new_reference() -> str:
    return uuid.uuid4().hex


async def test_the_same_key_and_body_replay_the_first_answer(
    app: FastAPI, tokens: TokenFactory, database: Database
) -> None:
    ref, key = new_reference(), uuid.uuid4().hex
    async with client_for(app) as client:
        first = await post(client, tokens, {"reference": ref, "amount": 500}, key=key)
        again = await post(client, tokens, {"reference": ref, "amount": 500}, key=key)
        # the same JSON written differently is the same request
        reordered = await client.post(
            "/top-ups",
            content=f'{{ "amount": 500,  "reference": "{ref}" }}',
            headers={**request_headers(tokens, "c0ffee00-0000-4000-8000-000000000001", key), "Content-Type": "application/json"},
        )  # fmt: skip
    assert first.status_code == again.status_code == reordered.status_code == 201
    assert again.content == reordered.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == reordered.headers["idempotent-replayed"] == "true"
    assert await effect_count(database, ref) == 1


async def test_the_same_key_with_another_body_is_422(app: FastAPI, tokens: TokenFactory, database: Database) -> None:
    ref, key = new_reference(), uuid.uuid4().hex
    async with client_for(app) as client:
        first = await post(client, tokens, {"reference": ref, "amount": 500}, key=key)
        changed = await post(client, tokens, {"reference": ref, "amount": 900}, key=key)
        other_path = await post(client, tokens, {"reference": ref, "amount": 500}, key=key, path="/other")
    assert first.status_code == 201
    assert changed.status_code == other_path.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    assert changed.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    assert await effect_count(database, ref) == 1


async def test_without_a_key_every_request_runs(app: FastAPI, tokens: TokenFactory, database: Database) -> None:
    ref = new_reference()
    async with client_for(app) as client:
        first = await post(client, tokens, {"reference": ref, "amount": 1}, key=None)
        second = await post(client, tokens, {"reference": ref, "amount": 1}, key=None)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert await effect_count(database, ref) == 2


async def test_keys_belong_to_the_caller_from_the_token(app: FastAPI, tokens: TokenFactory, database: Database) -> None:
    ref, key = new_reference(), uuid.uuid4().hex
    async with client_for(app) as client:
        mine = await post(client, tokens, {"reference": ref, "amount": 5}, key=key, caller_id=str(uuid.uuid4()))
        theirs = await post(client, tokens, {"reference": ref, "amount": 5}, key=key, caller_id=str(uuid.uuid4()))
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert await effect_count(database, ref) == 2


async def waiting_on_locks(database: Database) -> int:
    async with database.engine.connect() as conn:
        return await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%idempotency_keys%'"
            )
        )


async def test_concurrent_duplicates_have_one_effect(
    app: FastAPI, tokens: TokenFactory, database: Database, gate: asyncio.Event
) -> None:
    ref, key = new_reference(), uuid.uuid4().hex
    body = {"reference": ref, "amount": 700, "hold": True}
    async with client_for(app) as client:
        requests = [asyncio.create_task(post(client, tokens, body, key=key)) for _ in range(5)]
        # four duplicates queue on the first request's row lock while it waits at the gate
        for _ in range(500):
            if await waiting_on_locks(database) == 4:
                break
            await asyncio.sleep(0.01)
        assert await waiting_on_locks(database) == 4
        gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*requests), timeout=20)
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.content for answer in answers}) == 1
    assert sum(answer.headers.get("idempotent-replayed") == "true" for answer in answers) == 4
    assert await effect_count(database, ref) == 1


@pytest.mark.parametrize("failure", ["raise", "return"])
async def test_an_error_answer_is_not_stored_so_the_client_can_retry(
    app: FastAPI, tokens: TokenFactory, database: Database, failure: str
) -> None:
    ref, key = new_reference(), uuid.uuid4().hex
    async with client_for(app) as client:
        failed = await post(client, tokens, {"reference": ref, "amount": 5, "fail": failure}, key=key)
        assert failed.status_code in (402, 409)
        assert await effect_count(database, ref) == 0  # the change was rolled back with the claim
        failed_again = await post(client, tokens, {"reference": ref, "amount": 5, "fail": failure}, key=key)
        assert "idempotent-replayed" not in failed_again.headers
        fixed = await post(client, tokens, {"reference": ref, "amount": 5}, key=uuid.uuid4().hex)
    assert fixed.status_code == 201
    assert await effect_count(database, ref) == 1


async def test_key_length_is_bounded(app: FastAPI, tokens: TokenFactory) -> None:
    async with client_for(app) as client:
        too_long = await post(client, tokens, {"reference": new_reference(), "amount": 1}, key="k" * 256)
        longest_key = (uuid.uuid4().hex * 8)[:255]
        longest = await post(client, tokens, {"reference": new_reference(), "amount": 1}, key=longest_key)
        empty = await post(client, tokens, {"reference": new_reference(), "amount": 1}, key="")
    assert too_long.status_code == empty.status_code == 422
    assert too_long.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    assert longest.status_code == 201


async def test_a_request_without_credentials_runs_as_usual(
    app: FastAPI, tokens: TokenFactory, database: Database
) -> None:
    ref, key = new_reference(), uuid.uuid4().hex
    async with client_for(app) as client:
        for _ in range(2):
            response = await client.post(
                "/public", json={"reference": ref, "amount": 1}, headers={"Idempotency-Key": key}
            )
            assert response.status_code == 201
        rejected = await client.post("/top-ups", json={"reference": ref, "amount": 1}, headers={"Idempotency-Key": key})
    assert rejected.status_code == 401
    assert await effect_count(database, ref) == 2
