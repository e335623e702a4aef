"""The outbox: an event exists exactly when the change it describes was committed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from shared import context
from shared.db import Database, asyncpg_dsn
from shared.events.catalogue import UserUpdated
from shared.events.envelope import Envelope
from shared.events.outbox import NOTIFY_CHANNEL, OutboxHandoff, add_event
from shared.tables import outbox_events
from shared.testing.statements import statements_sent

pytest_plugins = ["tests.events_fixtures"]


class _Rollback(Exception):
    pass


def _user_updated() -> UserUpdated:
    return UserUpdated(user_id=uuid.uuid4(), full_name="Ann Smith", timezone="Europe/Moscow", language="ru")


async def _outbox_row(db: Database, event_id: uuid.UUID) -> dict | None:
    async with db.transaction() as session:
        row = (await session.execute(select(outbox_events).where(outbox_events.c.id == event_id))).mappings().first()
    return dict(row) if row else None


async def _scratch_ids(db: Database, table: str) -> list[str]:
    async with db.transaction() as session:
        return list((await session.execute(text(f"SELECT id FROM {table}"))).scalars())


async def test_the_event_is_written_in_the_same_transaction_as_the_change(db: Database, scratch_table: str) -> None:
    token = context.correlation_id.set("request-42")
    try:
        async with db.transaction() as session:
            await session.execute(text(f"INSERT INTO {scratch_table} (id) VALUES ('kept')"))
            envelope = await add_event(session, _user_updated())
            # inside the transaction, both are there; outside it, neither is yet
            assert await _outbox_row(db, envelope.event_id) is None
    finally:
        context.correlation_id.reset(token)

    row = await _outbox_row(db, envelope.event_id)
    assert row is not None and await _scratch_ids(db, scratch_table) == ["kept"]
    assert row["event_type"] == "user.updated"
    assert row["published_at"] is None and row["attempts"] == 0
    stored = Envelope.model_validate(row["envelope"])
    assert stored == envelope
    assert stored.producer == db.service
    assert stored.correlation_id == "request-42"
    assert stored.causation_id is None


async def test_a_rolled_back_change_leaves_no_event(db: Database, scratch_table: str) -> None:
    with pytest.raises(_Rollback):
        async with db.transaction() as session:
            await session.execute(text(f"INSERT INTO {scratch_table} (id) VALUES ('lost')"))
            envelope = await add_event(session, _user_updated())
            raise _Rollback

    assert await _outbox_row(db, envelope.event_id) is None
    assert await _scratch_ids(db, scratch_table) == []


async def test_an_event_added_while_handling_another_points_back_at_it(db: Database) -> None:
    cause = str(uuid.uuid4())
    correlation = context.correlation_id.set("chain-1")
    causation = context.causation_id.set(cause)
    try:
        async with db.transaction() as session:
            envelope = await add_event(session, _user_updated())
    finally:
        context.causation_id.reset(causation)
        context.correlation_id.reset(correlation)
    assert (envelope.correlation_id, envelope.causation_id) == ("chain-1", cause)


async def test_the_relay_is_notified_on_commit_only(db: Database) -> None:
    listener = await asyncpg.connect(asyncpg_dsn(db.url))
    notified: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notified.put_nowait(args[2]))
    try:
        with pytest.raises(_Rollback):
            async with db.transaction() as session:
                await add_event(session, _user_updated())
                raise _Rollback
        async with db.transaction() as session:
            await add_event(session, _user_updated())

        await asyncio.wait_for(notified.get(), timeout=10)
        # notifications arrive in commit order: had the rolled-back one notified, it would be here too
        await listener.execute("SELECT 1")
        assert notified.empty()
    finally:
        await listener.close()


async def test_a_session_outside_a_service_is_refused(events_db_url: str) -> None:
    db = Database(events_db_url, service="")
    try:
        with pytest.raises(RuntimeError, match="service"):
            async with db.transaction() as session:
                await add_event(session, _user_updated())
    finally:
        await db.dispose()


async def test_a_transactions_events_are_written_in_one_statement_and_notified_once(db: Database) -> None:
    with statements_sent(db.engine) as statements:
        async with db.transaction() as session:
            added = [await add_event(session, _user_updated()) for _ in range(3)]
        async with db.transaction() as session:
            added.append(await add_event(session, _user_updated()))

    assert sum("pg_notify" in statement for statement in statements) == 2  # one per transaction
    assert sum("INSERT INTO outbox_events" in statement for statement in statements) == 2  # one per transaction
    for envelope in added:
        row = await _outbox_row(db, envelope.event_id)
        assert row is not None and Envelope.model_validate(row["envelope"]) == envelope


async def test_a_rolled_back_savepoint_takes_its_events_and_the_rest_keep_their_order(db: Database) -> None:
    async with db.transaction() as session:
        first = await add_event(session, _user_updated())
        with pytest.raises(_Rollback):
            async with session.begin_nested():
                lost = await add_event(session, _user_updated())
                async with session.begin_nested():
                    lost_inner = await add_event(session, _user_updated())
                raise _Rollback
        async with session.begin_nested():
            released = await add_event(session, _user_updated())
        last = await add_event(session, _user_updated())

    assert await _outbox_row(db, lost.event_id) is None
    assert await _outbox_row(db, lost_inner.event_id) is None
    kept = [first, released, last]
    async with db.transaction() as session:
        order = (
            await session.execute(
                select(outbox_events.c.id)
                .where(outbox_events.c.id.in_([e.event_id for e in kept]))
                .order_by(outbox_events.c.created_at)
            )
        ).scalars()
        assert list(order) == [e.event_id for e in kept]


async def test_a_session_closed_without_commit_writes_nothing_and_its_next_transaction_starts_clean(
    db: Database,
) -> None:
    async with db.sessionmaker() as session:
        await session.begin()
        dropped = await add_event(session, _user_updated())
    # the same session object is never reused by the services; a new one must not inherit anything
    async with db.transaction() as session:
        kept = await add_event(session, _user_updated())
    assert await _outbox_row(db, dropped.event_id) is None
    assert await _outbox_row(db, kept.event_id) is not None


async def test_an_event_after_a_rolled_back_savepoint_notifies_again(db: Database) -> None:
    """The savepoint's NOTIFY went with it; the relay must still be woken for the event that stays."""
    listener = await asyncpg.connect(asyncpg_dsn(db.url))
    notified: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notified.put_nowait(args[2]))
    try:
        async with db.transaction() as session:
            with pytest.raises(_Rollback):
                async with session.begin_nested():
                    await add_event(session, _user_updated())
                    raise _Rollback
            kept = await add_event(session, _user_updated())

        await asyncio.wait_for(notified.get(), timeout=10)
        assert await _outbox_row(db, kept.event_id) is not None
    finally:
        await listener.close()


async def test_an_event_inside_a_savepoint_after_the_outer_notified_does_not_notify_again(db: Database) -> None:
    with statements_sent(db.engine) as statements:
        async with db.transaction() as session:
            await add_event(session, _user_updated())
            async with session.begin_nested():
                await add_event(session, _user_updated())

    assert sum("pg_notify" in statement for statement in statements) == 1


class _Receiver:
    """A relay's side of the hand-over: what it was given, one list per committed transaction."""

    def __init__(self) -> None:
        self.handed_over: list[list[Envelope]] = []

    def __call__(self, envelopes: Sequence[Envelope]) -> None:
        self.handed_over.append(list(envelopes))


async def test_with_a_relay_of_its_own_a_commit_claims_its_rows_for_it_hands_them_over_and_notifies_no_one(
    db: Database, events_db_url: str
) -> None:
    receiver = _Receiver()
    listener = await asyncpg.connect(asyncpg_dsn(db.url))
    notified: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notified.put_nowait(args[2]))
    elsewhere = Database(events_db_url, service=db.service, pool_size=1, max_overflow=0)  # no relay there
    db.outbox_handoff = OutboxHandoff(receiver, timedelta(minutes=5))
    try:
        async with db.transaction() as session:
            added = [await add_event(session, _user_updated()) for _ in range(3)]
            assert receiver.handed_over == []  # not before the commit
        assert receiver.handed_over == [added]  # once, in the order added

        for envelope in added:
            row = await _outbox_row(db, envelope.event_id)
            assert row is not None and row["published_at"] is None
            assert row["claimed_until"] - row["created_at"] == pytest.approx(
                timedelta(minutes=5), abs=timedelta(seconds=1)
            )
        async with elsewhere.transaction() as session:
            unclaimed = await add_event(session, _user_updated())
        row = await _outbox_row(db, unclaimed.event_id)
        assert row is not None and row["claimed_until"] is None

        await asyncio.wait_for(notified.get(), timeout=10)
        # notifications arrive in commit order: had the handed-over commit notified, a second one would wait
        await listener.execute("SELECT 1")
        assert notified.empty()
    finally:
        await listener.close()
        await elsewhere.dispose()


async def test_nothing_is_handed_over_for_a_rolled_back_transaction_or_a_commit_that_fails(
    db: Database, unique: str
) -> None:
    receiver = _Receiver()
    db.outbox_handoff = OutboxHandoff(receiver, timedelta(minutes=5))
    table = f"deferred_{unique}"
    async with db.transaction() as session:  # a unique check PostgreSQL makes only at the commit
        await session.execute(text(f"CREATE TABLE {table} (id int, UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)"))
    try:
        with pytest.raises(_Rollback):
            async with db.transaction() as session:
                rolled_back = await add_event(session, _user_updated())
                raise _Rollback
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await session.execute(text(f"INSERT INTO {table} VALUES (1), (1)"))
                failed_commit = await add_event(session, _user_updated())

        assert receiver.handed_over == []
        assert await _outbox_row(db, rolled_back.event_id) is None
        assert await _outbox_row(db, failed_commit.event_id) is None
    finally:
        async with db.transaction() as session:
            await session.execute(text(f"DROP TABLE {table}"))
