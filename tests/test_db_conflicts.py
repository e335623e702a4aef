"""A broken unique constraint becomes the 409 its caller names; other integrity errors pass unchanged (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, unique_conflicts, unique_violation
from shared.errors import Conflict

ACCOUNTS = """
CREATE TEMPORARY TABLE accounts (
    id integer PRIMARY KEY,
    email text CONSTRAINT uq_accounts_email UNIQUE,
    nickname text,
    age integer CONSTRAINT ck_accounts_age CHECK (age >= 0)
)
"""
NICKNAME_INDEX = "CREATE UNIQUE INDEX uq_accounts_active_nickname ON accounts (nickname) WHERE age IS NOT NULL"
INSERT = text("INSERT INTO accounts (id, email, nickname, age) VALUES (:id, :email, :nickname, :age)")
TAKEN = {"uq_accounts_email": ("email_taken", "This email is taken")}


@pytest.fixture
async def session(shared_db_url: str) -> AsyncIterator[AsyncSession]:
    database = Database(shared_db_url, service="db-conflict-test", pool_size=1, max_overflow=0)
    try:
        async with database.sessionmaker() as session, session.begin():
            await session.execute(text(ACCOUNTS))
            await session.execute(text(NICKNAME_INDEX))
            await session.execute(INSERT, {"id": 1, "email": "a@example.com", "nickname": "ann", "age": 30})
            yield session
            await session.rollback()
    finally:
        await database.dispose()


async def _insert(session: AsyncSession, **values: object) -> None:
    async with session.begin_nested():
        await session.execute(INSERT, {"id": 2, "email": None, "nickname": None, "age": None, **values})


async def test_unique_violation_names_the_constraint_or_the_unique_index(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError) as email:
        await _insert(session, email="a@example.com")
    assert unique_violation(email.value) == "uq_accounts_email"
    with pytest.raises(IntegrityError) as nickname:
        await _insert(session, nickname="ann", age=5)
    assert unique_violation(nickname.value) == "uq_accounts_active_nickname"
    with pytest.raises(IntegrityError) as key:
        await _insert(session, id=1)
    assert unique_violation(key.value) == "accounts_pkey"


async def test_other_integrity_errors_are_not_unique_violations(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError) as check:
        await _insert(session, age=-1)
    assert unique_violation(check.value) is None
    with pytest.raises(IntegrityError) as not_null:
        await _insert(session, id=None)
    assert unique_violation(not_null.value) is None


async def test_a_named_constraint_becomes_its_conflict_and_the_session_carries_on(session: AsyncSession) -> None:
    with pytest.raises(Conflict) as caught, unique_conflicts(TAKEN):
        await _insert(session, email="a@example.com")
    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        409,
        "email_taken",
        "This email is taken",
    )
    assert isinstance(caught.value.__cause__, IntegrityError)
    # the savepoint was rolled back: the transaction is still usable
    with unique_conflicts(TAKEN):
        await _insert(session, email="b@example.com")
    assert await session.scalar(text("SELECT count(*) FROM accounts")) == 2


async def test_constraints_not_named_and_other_errors_pass_through_unchanged(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError) as unnamed, unique_conflicts(TAKEN):
        await _insert(session, id=1)
    assert unique_violation(unnamed.value) == "accounts_pkey"
    with pytest.raises(IntegrityError), unique_conflicts(TAKEN):
        await _insert(session, age=-1)
    with pytest.raises(ZeroDivisionError), unique_conflicts(TAKEN):
        _ = 1 / 0
