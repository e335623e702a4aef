"""``after_commit`` (a side effect outside the database happens once its transaction commits, never on rollback) and ``first_time_in_transaction``, on real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import Database, after_commit, first_time_in_transaction


async def test_the_callback_runs_after_the_commit_and_only_then(database: Database) -> None:
    calls: list[str] = []
    async with database.transaction() as session:
        await session.execute(text("SELECT 1"))
        after_commit(session, lambda: calls.append("counted"))
        assert calls == []  # still inside the transaction
    assert calls == ["counted"]


async def test_a_rolled_back_transaction_runs_nothing_then_or_later(database: Database) -> None:
    calls: list[str] = []
    async with database.sessionmaker() as session:
        async with session.begin():
            after_commit(session, lambda: calls.append("rolled back"))
            await session.rollback()
        async with session.begin():  # the same session's next transaction does not inherit it
            after_commit(session, lambda: calls.append("second"))
    assert calls == ["second"]


async def test_an_error_inside_the_transaction_runs_nothing(database: Database) -> None:
    calls: list[str] = []
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            after_commit(session, lambda: calls.append("never"))
            raise RuntimeError("handler failed")
    assert calls == []


async def test_a_savepoint_rolled_back_keeps_the_outer_transactions_callbacks(database: Database) -> None:
    calls: list[str] = []
    async with database.transaction() as session:
        after_commit(session, lambda: calls.append("outer"))
        with pytest.raises(ValueError):
            async with session.begin_nested():
                raise ValueError("the inner step fails")
    assert calls == ["outer"]


async def test_a_failing_callback_does_not_undo_the_commit_or_stop_the_others(database: Database) -> None:
    calls: list[str] = []

    def fails() -> None:
        raise RuntimeError("metrics backend gone")

    async with database.transaction() as session:
        after_commit(session, fails)
        after_commit(session, lambda: calls.append("still runs"))
    assert calls == ["still runs"]


# --- first_time_in_transaction: a statement whose effect lasts the transaction is sent once ---


async def test_the_first_time_is_remembered_for_the_transaction_and_its_savepoints(database: Database) -> None:
    async with database.sessionmaker() as session:
        async with session.begin():
            assert first_time_in_transaction(session, "lock")
            assert not first_time_in_transaction(session, "lock")
            assert first_time_in_transaction(session, "another")
            async with session.begin_nested():  # done by the enclosing transaction: still done
                assert not first_time_in_transaction(session, "lock")
        async with session.begin():  # the next transaction starts with nothing done
            assert first_time_in_transaction(session, "lock")


async def test_what_a_rolled_back_savepoint_did_is_forgotten(database: Database) -> None:
    async with database.transaction() as session:
        savepoint = await session.begin_nested()
        assert first_time_in_transaction(session, "lock")
        await savepoint.rollback()  # PostgreSQL undid it: it must be done again
        assert first_time_in_transaction(session, "lock")
        assert not first_time_in_transaction(session, "lock")
