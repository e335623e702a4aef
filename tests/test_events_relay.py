"""The outbox relay: committed events reach the broker, once each, whatever happens to the connection."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from shared.db import Database
from shared.events import relay as relay_module
from shared.events.bus import PublishError, PublishRejected, RabbitMQBus
from shared.events.envelope import Envelope
from shared.events.outbox import OutboxHandoff
from shared.events.relay import OutboxRelay
from shared.tables import outbox_events
from shared.testing.events import EventRecorder, commit_user_updates, eventually, produced_by
from shared.testing.tcp_proxy import TcpProxy

pytest_plugins = ["tests.events_fixtures"]

MakeBus = Callable[..., Awaitable[RabbitMQBus]]
FAST_RETRY = (0.05, 0.5)
NEVER_POLL = 60.0  # longer than any wait below: only a NOTIFY can make these relays publish in time


async def _connected_bus(make_bus: MakeBus, url: str) -> RabbitMQBus:
    bus = await make_bus(url)
    await eventually(lambda: bus.is_connected, what="bus connected")
    return bus


async def test_a_pass_publishes_pending_events_in_order_and_marks_them(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    relay = OutboxRelay(db, await _connected_bus(make_rabbit_bus, rabbit_url), poll_seconds=NEVER_POLL)
    written = await commit_user_updates(db, 3)
    assert await relay.backlog() == 3

    assert await relay.publish_pending() == 3
    received = await recorder.wait_for_count("user.updated", 3, produced_by(db))
    assert [e.event_id for e in received] == [e.event_id for e in written]  # in the order they were added
    assert received == written
    assert await relay.backlog() == 0
    assert await relay.publish_pending() == 0


async def test_200_events_written_while_the_broker_connection_is_cut_all_arrive_once_restored(
    db: Database,
    scratch_table: str,
    rabbit_url: str,
    rabbit_proxy: TcpProxy,
    make_rabbit_bus: MakeBus,
    recorder: EventRecorder,
) -> None:
    bus = await _connected_bus(make_rabbit_bus, rabbit_proxy.rewrite_url(rabbit_url))
    relay = OutboxRelay(db, bus, poll_seconds=1.0, retry_backoff=FAST_RETRY)
    await relay.start()
    written: list[Envelope] = []
    try:
        for i in range(200):
            if i == 50:
                rabbit_proxy.cut()
            written += await commit_user_updates(db, scratch_table=scratch_table)
        async with db.transaction() as session:
            failed_attempts = await session.scalar(select(func.sum(outbox_events.c.attempts)))
        assert failed_attempts, "the relay never met the cut connection"

        rabbit_proxy.restore()
        written_ids = {e.event_id for e in written}

        def received_ids() -> set[uuid.UUID]:
            return {e.event_id for e in recorder.of_type("user.updated", produced_by(db))}

        await eventually(lambda: received_ids() >= written_ids, timeout=30, what="all 200 events received")
        # exactly those 200; one whose confirm was lost to the cut may legitimately arrive twice
        assert received_ids() == written_ids
        await eventually(lambda: _backlog_is_zero(relay), what="outbox drained")
    finally:
        await relay.stop()


async def _backlog_is_zero(relay: OutboxRelay) -> bool:
    return await relay.backlog() == 0


async def test_a_failed_publish_keeps_the_row_and_records_why(
    db: Database, rabbit_url: str, rabbit_proxy: TcpProxy, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    rabbit_proxy.cut()
    bus = await make_rabbit_bus(rabbit_proxy.rewrite_url(rabbit_url))
    relay = OutboxRelay(db, bus, poll_seconds=NEVER_POLL)
    [envelope] = await commit_user_updates(db)

    assert await relay.publish_pending() == 0
    async with db.transaction() as session:
        row = (await session.execute(select(outbox_events))).mappings().one()
    assert row["published_at"] is None and row["attempts"] == 1
    assert "BrokerUnavailable" in row["last_error"]

    rabbit_proxy.restore()
    await eventually(lambda: bus.is_connected, what="bus connected")
    assert await relay.publish_pending() == 1
    assert (await recorder.wait_for("user.updated", produced_by(db))).event_id == envelope.event_id


class _WatchedBus:
    """The real bus, noting the size of each batch handed to it, and refusing one event as the broker
    would (a negative confirm)."""

    def __init__(self, bus: RabbitMQBus, refuse: uuid.UUID) -> None:
        self._bus = bus
        self._refuse = refuse
        self.batches: list[int] = []

    @property
    def is_connected(self) -> bool:
        return self._bus.is_connected

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[PublishError | None]:
        self.batches.append(len(envelopes))
        taken = [e for e in envelopes if e.event_id != self._refuse]
        outcomes = iter(await self._bus.publish_many(taken))
        return [
            PublishRejected("refused by the test's broker") if e.event_id == self._refuse else next(outcomes)
            for e in envelopes
        ]


async def test_a_batch_is_published_with_its_confirms_awaited_together_and_a_refused_row_stays_pending(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    written = await commit_user_updates(db, 20)
    refused = written[7]
    bus = _WatchedBus(await _connected_bus(make_rabbit_bus, rabbit_url), refuse=refused.event_id)
    relay = OutboxRelay(db, bus, poll_seconds=NEVER_POLL)  # type: ignore[arg-type]

    assert await relay.publish_pending() == 19
    assert bus.batches == [20]  # written together, their confirms awaited together
    received = await recorder.wait_for_count("user.updated", 19, produced_by(db))
    assert [e.event_id for e in received] == [e.event_id for e in written if e is not refused]  # in order
    async with db.transaction() as session:
        pending = (await session.execute(select(outbox_events).where(outbox_events.c.published_at.is_(None)))).all()
    assert [(row.id, row.attempts) for row in pending] == [(refused.event_id, 1)]
    assert "PublishRejected" in pending[0].last_error


async def test_replicas_publishing_at_once_never_publish_a_row_twice(
    db: Database, events_db_url: str, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    second_db = Database(events_db_url, service=db.service, pool_size=2, max_overflow=0)
    try:
        replicas = [
            OutboxRelay(db, await _connected_bus(make_rabbit_bus, rabbit_url), poll_seconds=NEVER_POLL, batch_size=10),
            OutboxRelay(second_db, await _connected_bus(make_rabbit_bus, rabbit_url), poll_seconds=NEVER_POLL, batch_size=10),
        ]  # fmt: skip
        written = await commit_user_updates(db, 300)

        async def keep_publishing(relay: OutboxRelay) -> int:
            published = 0
            while await relay.backlog():
                published += await relay.publish_pending()
            return published

        counts = await asyncio.gather(*(keep_publishing(relay) for relay in replicas))
        assert sum(counts) == 300  # each row was claimed, published and marked by exactly one replica
        received = await recorder.wait_for_count("user.updated", 300, produced_by(db))
        assert {e.event_id for e in received} == {e.event_id for e in written}
    finally:
        await second_db.dispose()


async def test_a_commit_elsewhere_wakes_the_relay_without_waiting_for_the_poll(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    """A process with no relay of its own (a command-line tool) commits: its NOTIFY wakes the relay."""
    async with _listening_relay(db, await _connected_bus(make_rabbit_bus, rabbit_url)), _elsewhere(db) as elsewhere:
        [envelope] = await commit_user_updates(elsewhere)
        await recorder.wait_for("user.updated", lambda e: e.event_id == envelope.event_id)


async def test_a_started_relay_publishes_what_its_own_process_commits_at_once_and_marks_it(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    """Handed over by the commit, not claimed by a pass: published and marked in one round trip."""
    async with _listening_relay(db, await _connected_bus(make_rabbit_bus, rabbit_url)) as relay:
        assert db.outbox_handoff is not None and db.outbox_handoff.receive == relay.take
        written = await commit_user_updates(db, 3)
        received = await recorder.wait_for_count("user.updated", 3, produced_by(db))
        assert received == written  # each once, in the order added
        await eventually(lambda: _backlog_is_zero(relay), what="the rows marked published")
        rows = await _outbox_rows(db)
        assert all(row.claimed_until is None and row.attempts == 0 for row in rows)
        assert all(row.published_at >= row.created_at for row in rows)
    assert db.outbox_handoff is None  # stopped: commits notify again, for whichever relay runs next


async def test_rows_claimed_by_a_process_that_died_are_left_to_it_until_the_claim_runs_out(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    db.outbox_handoff = OutboxHandoff(lambda envelopes: None, timedelta(hours=1))  # it dies before it publishes
    written = await commit_user_updates(db, 2)
    db.outbox_handoff = None
    relay = OutboxRelay(db, await _connected_bus(make_rabbit_bus, rabbit_url), poll_seconds=NEVER_POLL)

    assert await relay.publish_pending() == 0  # still that process's
    async with db.transaction() as session:  # the hour has passed
        await session.execute(update(outbox_events).values(claimed_until=func.now() - timedelta(seconds=1)))
    assert await relay.publish_pending() == 2
    assert await recorder.wait_for_count("user.updated", 2, produced_by(db)) == written
    assert await relay.backlog() == 0


async def test_a_full_hand_over_refuses_more_and_leaves_their_rows_to_wait_out_the_claim(
    db: Database,
    rabbit_url: str,
    make_rabbit_bus: MakeBus,
    recorder: EventRecorder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(relay_module, "MAX_HANDED_OVER", 2)
    db.outbox_handoff = OutboxHandoff(lambda envelopes: None, timedelta(hours=1))
    written = await commit_user_updates(db, 3)
    db.outbox_handoff = None
    relay = OutboxRelay(db, await _connected_bus(make_rabbit_bus, rabbit_url), poll_seconds=NEVER_POLL)

    relay.take(written[:2])
    relay.take(written[2:])  # one more than the relay holds: refused, said so, nothing lost
    relay.take(written[2:])
    # said once for the spell, however many commits it refuses (the operator's log is not flooded)
    assert [r.message for r in caplog.records if "hand-over" in r.message] == [
        "outbox hand-over full; the rows of further commits wait for their lease to run out"
    ]
    assert await relay.publish_pending() == 2
    assert await recorder.wait_for_count("user.updated", 2, produced_by(db)) == written[:2]
    left = {row.id: row for row in await _outbox_rows(db)}[written[2].event_id]
    assert left.published_at is None and left.claimed_until is not None  # a pass takes it when the claim ends

    relay.take(written[2:])  # the next commit finds room again, and the end of the spell is said with its count
    (room_again,) = [r for r in caplog.records if r.message == "outbox hand-over has room again"]
    assert room_again.refused == 2  # type: ignore[attr-defined]


async def test_a_handed_over_event_the_broker_refuses_is_released_for_the_passes_and_the_rest_marked(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    handed_over: list[Envelope] = []
    db.outbox_handoff = OutboxHandoff(handed_over.extend, timedelta(hours=1))
    written = await commit_user_updates(db, 3)
    db.outbox_handoff = None
    bus = _WatchedBus(await _connected_bus(make_rabbit_bus, rabbit_url), refuse=written[1].event_id)
    relay = OutboxRelay(db, bus, poll_seconds=NEVER_POLL)  # type: ignore[arg-type]
    relay.take(handed_over)

    assert await relay.publish_pending() == 2  # the hand-over failed in part: no pass after it
    rows = {row.id: row for row in await _outbox_rows(db)}
    refused = rows[written[1].event_id]
    assert (refused.published_at, refused.claimed_until, refused.attempts) == (None, None, 1)
    assert "PublishRejected" in refused.last_error
    for envelope in (written[0], written[2]):
        assert rows[envelope.event_id].published_at is not None and rows[envelope.event_id].claimed_until is None

    bus._refuse = uuid.uuid4()  # the broker takes it now: the next pass publishes it, no lease to wait out
    assert await relay.publish_pending() == 1
    received = await recorder.wait_for_count("user.updated", 3, produced_by(db))
    assert sorted(e.event_id for e in received) == sorted(e.event_id for e in written)


async def test_the_listener_reconnects_when_the_database_drops_it(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    async with _listening_relay(db, await _connected_bus(make_rabbit_bus, rabbit_url)), _elsewhere(db) as elsewhere:
        [first_pid] = await _listener_pids(db)
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        await eventually(lambda: _listener_other_than(db, first_pid), what="a new LISTEN connection")
        [envelope] = await commit_user_updates(elsewhere)  # only a NOTIFY tells the relay about it
        await recorder.wait_for("user.updated", lambda e: e.event_id == envelope.event_id)


async def test_stop_publishes_what_is_already_committed(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    relay = OutboxRelay(db, await _connected_bus(make_rabbit_bus, rabbit_url), poll_seconds=NEVER_POLL)
    written = await commit_user_updates(db, 5)
    await relay.stop()
    received = await recorder.wait_for_count("user.updated", 5, produced_by(db))
    assert {e.event_id for e in received} == {e.event_id for e in written}
    assert await relay.backlog() == 0


async def test_a_pooled_connection_the_database_drops_is_replaced_before_the_next_pass(
    db: Database, rabbit_url: str, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    """The pass runs on the driver's connection, where the pool cannot see a drop: the relay discards it."""
    async with _listening_relay(db, await _connected_bus(make_rabbit_bus, rabbit_url)):
        [first] = await commit_user_updates(db)
        await recorder.wait_for("user.updated", lambda e: e.event_id == first.event_id)
        writer = Database(db.url, service=db.service)  # the test's own connection, outside the relay's pool
        try:
            async with writer.transaction() as session:  # every connection of the relay's pool (not the listener)
                await session.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"
                        " AND datname = current_database() AND pid <> pg_backend_pid()"
                    ),
                    {"name": db.service},
                )
            [second] = await commit_user_updates(writer)
        finally:
            await writer.dispose()
        await recorder.wait_for("user.updated", lambda e: e.event_id == second.event_id)


@contextlib.asynccontextmanager
async def _elsewhere(db: Database) -> AsyncIterator[Database]:
    """The same database from a process with no relay of its own: its commits notify."""
    elsewhere = Database(db.url, service=db.service, pool_size=1, max_overflow=0)
    try:
        yield elsewhere
    finally:
        await elsewhere.dispose()


async def _outbox_rows(db: Database) -> list:
    async with db.transaction() as session:
        return list((await session.execute(select(outbox_events))).all())


@contextlib.asynccontextmanager
async def _listening_relay(db: Database, bus: RabbitMQBus) -> AsyncIterator[OutboxRelay]:
    """A started relay (woken only by NOTIFY) whose LISTEN connection is up; stopped afterwards."""
    relay = OutboxRelay(db, bus, poll_seconds=NEVER_POLL, retry_backoff=FAST_RETRY)
    await relay.start()
    try:
        await _wait_for_listener(db)
        yield relay
    finally:
        await relay.stop()


async def _listener_pids(db: Database) -> list[int]:
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name AND datname = current_database()"),
            {"name": f"{db.service}-outbox-listener"},
        )
        return list(rows.scalars())


async def _listener_other_than(db: Database, pid: int) -> bool:
    return any(p != pid for p in await _listener_pids(db))


async def _wait_for_listener(db: Database) -> int:
    await eventually(lambda: _has_listener(db), what="the relay's LISTEN connection")
    return (await _listener_pids(db))[0]


async def _has_listener(db: Database) -> bool:
    return bool(await _listener_pids(db))
