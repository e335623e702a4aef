"""``DriverStatement`` (a Core statement compiled once, run on the driver's connection in a session's
transaction) and ``row_snapshot``, on real PostgreSQL: the statement is inside the session's transaction
even as its first statement, SQLAlchemy's listeners see it, and the database's answers reach clients as
the ORM's do (the same exceptions; 503 for "not now" and a lost connection, which the pool then drops;
500 that says nothing for the rest). It leans on three members of SQLAlchemy's asyncpg adapter
(``shared.db._begin`` and ``_as_sqlalchemy_error``): these tests fail if an upgrade changes them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, event, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session

from shared.db import Database, DriverStatement, make_base, row_snapshot, unique_violation
from shared.errors import install_error_handlers
from shared.testing.infra import PG_ADMIN_DSN
from shared.testing.statements import statements_sent


@pytest.fixture
async def notes(database: Database) -> AsyncIterator[Table]:
    table = Table(
        f"driver_notes_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("body", String(100), nullable=False),
    )
    async with database.engine.begin() as connection:
        await connection.run_sync(table.create)
    try:
        yield table
    finally:
        async with database.engine.begin() as connection:
            await connection.run_sync(table.drop)


def _add_note(notes: Table) -> DriverStatement:
    return DriverStatement(insert(notes).values(id=bindparam("id"), body=bindparam("body")).returning(notes.c.id))


async def _bodies(database: Database, notes: Table) -> list[str]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(notes.c.body).order_by(notes.c.id)))


async def test_a_driver_statement_first_in_a_transaction_is_inside_it(database: Database, notes: Table) -> None:
    add = _add_note(notes)
    async with database.sessionmaker() as session:
        async with session.begin():
            await add.fetch(session, id=1, body="rolled back")  # the transaction's first statement
            # the ORM's statements in the same transaction see it
            assert list(await session.scalars(select(notes.c.body))) == ["rolled back"]
            await session.rollback()
    assert await _bodies(database, notes) == []

    async with database.transaction() as session:
        assert [row["id"] for row in await add.fetch(session, id=2, body="kept")] == [2]
    assert await _bodies(database, notes) == ["kept"]


async def test_a_driver_statement_after_the_orms_shares_its_transaction(database: Database, notes: Table) -> None:
    add = _add_note(notes)
    async with database.sessionmaker() as session:
        async with session.begin():
            await session.execute(insert(notes).values(id=1, body="by the ORM"))
            await add.fetchrow(session, id=2, body="on the driver")
            await session.rollback()
    assert await _bodies(database, notes) == []


async def _first_note_added(database: Database, notes: Table) -> DriverStatement:
    """The statement adding a note, once run: note 1 is there, committed."""
    add = _add_note(notes)
    async with database.transaction() as session:
        await add.fetch(session, id=1, body="first")
    return add


async def test_a_driver_statements_failure_is_the_exception_sqlalchemy_raises_for_its_own(
    database: Database, notes: Table
) -> None:
    add = await _first_note_added(database, notes)
    with pytest.raises(IntegrityError) as raised:  # what shared.db.unique_conflicts turns into a 409
        async with database.transaction() as session:
            await add.fetch(session, id=1, body="again")
    assert raised.value.statement == add.sql and not raised.value.connection_invalidated
    assert unique_violation(raised.value) == f"{notes.name}_pkey"


async def test_a_driver_statement_at_the_commit_fails_as_sqlalchemy_would_and_nothing_is_kept(
    database: Database, notes: Table
) -> None:
    """The outbox's way: a ``before_commit`` hook sends it from SQLAlchemy's synchronous side."""
    add = await _first_note_added(database, notes)
    session = database.sessionmaker()

    @event.listens_for(session.sync_session, "before_commit")
    def _add_at_commit(sync_session: Session) -> None:
        add.fetch_in_sync_hook(sync_session, id=1, body="again")

    with pytest.raises(IntegrityError):
        async with session, session.begin():
            await add.fetch(session, id=2, body="with it")
    assert await _bodies(database, notes) == ["first"]


async def test_values_the_statement_was_built_with_are_kept_and_a_missing_one_is_named(database: Database) -> None:
    greeting = DriverStatement(select(literal("hello").label("word"), bindparam("name", type_=String()).label("name")))
    async with database.transaction() as session:
        row = await greeting.fetchrow(session, name="tutor")
        assert row is not None and (row["word"], row["name"]) == ("hello", "tutor")
        with pytest.raises(TypeError, match="name"):
            await greeting.fetchrow(session)


async def test_sqlalchemys_listeners_see_driver_statements(database: Database, notes: Table) -> None:
    add = _add_note(notes)
    with statements_sent(database.engine) as seen:
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
            await add.fetch(session, id=1, body="counted")
    assert seen == ["SELECT 1", add.sql]


Base = make_base()


class Pupil(Base):
    __tablename__ = "driver_snapshot_pupils"

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column("name", String(100))


def test_a_row_snapshot_holds_the_row_by_column_name_and_belongs_to_no_session() -> None:
    pupil = row_snapshot(Pupil, {"id": 7, "name": "Anna", "pg_advisory_xact_lock_1": None})
    assert (pupil.id, pupil.full_name) == (7, "Anna")
    assert object_session(pupil) is None


# --- what clients get -----------------------------------------------------------------------------------


def _app(database: Database) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    sleep = DriverStatement(select(text("pg_sleep(1)")))
    divide = DriverStatement(select(text("1 / 0")))
    backend = DriverStatement(select(text("pg_backend_pid()")))
    one = DriverStatement(select(literal(1).label("one")))

    @app.get("/slow")
    async def slow() -> dict[str, int]:
        async with database.transaction() as session:
            await session.execute(text("SET LOCAL statement_timeout = '10ms'"))
            await sleep.fetch(session)
        return {"one": 1}

    @app.get("/broken")
    async def broken() -> dict[str, int]:
        async with database.transaction() as session:
            await divide.fetch(session)
        return {"one": 1}

    @app.get("/pid")
    async def pid() -> dict[str, int]:
        async with database.transaction() as session:
            row = await backend.fetchrow(session)
        assert row is not None
        return {"pid": row[0]}

    @app.get("/one")
    async def read_one() -> dict[str, int]:
        async with database.transaction() as session:
            row = await one.fetchrow(session)
        assert row is not None
        return {"one": row["one"]}

    return app


async def test_the_databases_answers_to_a_driver_statement_reach_clients_as_the_orms_do(database: Database) -> None:
    transport = httpx.ASGITransport(app=_app(database), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        slow = await client.get("/slow")  # 57014 statement timeout: not now
        assert slow.status_code == 503, slow.text
        assert slow.json()["error"]["code"] == "service_unavailable" and int(slow.headers["retry-after"]) > 0

        broken = await client.get("/broken")  # 22012 division by zero: a real error, and it says nothing
        assert broken.status_code == 500
        assert broken.json()["error"]["message"] == "Internal error" and "division" not in broken.text

        # the pooled connection is killed under the service: the next request is 503, the one after it
        # gets a new connection
        pid = (await client.get("/pid")).json()["pid"]
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        lost = await client.get("/one")
        assert lost.status_code == 503, lost.text
        again = await client.get("/one")
        assert again.status_code == 200 and again.json() == {"one": 1}
