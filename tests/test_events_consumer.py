"""The consumer with the inbox, on RabbitMQ and on the in-process bus alike.

Every test taking ``harness`` runs twice: against RabbitMQ and against InMemoryBus.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aio_pika
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.events import EventHandler
from shared.events.bus import RabbitMQBus
from shared.events.catalogue import UserRegistered, UserUpdated, payload_as
from shared.events.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.events.handlers import batch_handler, handling
from shared.events.outbox import add_event
from shared.tables import inbox_events, outbox_events
from shared.testing.events import CONSUMER_BATCH_SIZE, eventually, wait_for_dead_letters
from shared.testing.statements import statements_sent
from shared.testing.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from tests.events_fixtures import BusHarness

pytest_plugins = ["tests.events_fixtures"]

MakeConsumer = Callable[..., Awaitable[EventConsumer]]
POISON = "poison"


def _user_updated(name: str = "Ann") -> Envelope:
    payload = UserUpdated(user_id=uuid.uuid4(), full_name=name, timezone="Europe/Moscow", language="ru")
    return Envelope.wrap(payload, producer="user-service", correlation_id=uuid.uuid4().hex)


def _consumed(service: str, event_type: str, outcome: str) -> int:
    value = REGISTRY.get_sample_value(
        "events_consumed_total", {"service": service, "event_type": event_type, "outcome": outcome}
    )
    return int(value or 0)


async def _rows(db: Database, table: str) -> list[tuple[str, str | None]]:
    async with db.transaction() as session:
        return [tuple(row) for row in await session.execute(text(f"SELECT id, note FROM {table} ORDER BY note"))]


@pytest.fixture
async def make_consumer(db: Database, service: str) -> AsyncIterator[MakeConsumer]:
    consumers: list[EventConsumer] = []

    async def make(bus: object, handlers: dict[str, EventHandler]) -> EventConsumer:
        consumer = EventConsumer(
            db, bus, service=service, handlers=handlers,  # type: ignore[arg-type]
            batch_size=CONSUMER_BATCH_SIZE, retry_backoff=(0.01, 0.05),
        )  # fmt: skip
        consumers.append(consumer)
        await consumer.start()
        return consumer

    yield make
    for consumer in consumers:
        await consumer.stop()


def _recording_handler(table: str, attempts: list[str]) -> EventHandler:
    """Writes one row per application; fails (after writing) for a user named POISON."""

    async def handle(session: AsyncSession, event: Envelope) -> None:
        user = payload_as(event, UserUpdated)
        attempts.append(user.full_name)
        await session.execute(
            text(f"INSERT INTO {table} (id, note) VALUES (:id, :note)"),
            {"id": uuid.uuid4().hex, "note": user.full_name},  # a fresh id: a second application would show
        )
        if user.full_name == POISON:
            raise RuntimeError("this handler cannot take this event")

    return handle


async def test_an_event_delivered_twice_has_one_effect(
    harness: BusHarness, make_consumer: MakeConsumer, db: Database, scratch_table: str, service: str
) -> None:
    attempts: list[str] = []
    await make_consumer(harness.bus, {"user.updated": _recording_handler(scratch_table, attempts)})
    event = _user_updated("once")

    await harness.bus.publish(event)
    await harness.bus.publish(event)  # e.g. the relay published again after a lost confirm

    await eventually(lambda: _consumed(service, "user.updated", "duplicate") == 1, what="the duplicate seen")
    assert _consumed(service, "user.updated", "processed") == 1
    assert attempts == ["once"]
    assert [note for _, note in await _rows(db, scratch_table)] == ["once"]
    async with db.transaction() as session:
        assert await session.scalar(select(inbox_events.c.event_type).where(inbox_events.c.event_id == event.event_id))


async def test_a_failing_handler_is_retried_a_bounded_number_of_times_then_dead_lettered_and_the_queue_flows(
    harness: BusHarness, make_consumer: MakeConsumer, db: Database, scratch_table: str, service: str
) -> None:
    attempts: list[str] = []
    await make_consumer(harness.bus, {"user.updated": _recording_handler(scratch_table, attempts)})
    poison, good = _user_updated(POISON), _user_updated("good")

    await harness.bus.publish(poison)
    await harness.bus.publish(good)

    [dead] = await harness.dead_letters(service, 1)
    assert Envelope.from_json(dead).event_id == poison.event_id
    await eventually(lambda: "good" in attempts, what="the good event handled after the poison")
    assert attempts.count(POISON) == 3  # the delivery limit of both buses in these tests
    assert _consumed(service, "user.updated", "failed") == 2
    assert _consumed(service, "user.updated", "dead_lettered") == 1
    assert _consumed(service, "user.updated", "processed") == 1
    # each failed attempt was rolled back: only the good event left a row, and no inbox row for the poison
    assert [note for _, note in await _rows(db, scratch_table)] == ["good"]
    async with db.transaction() as session:
        assert (
            await session.scalar(select(inbox_events.c.event_id).where(inbox_events.c.event_id == poison.event_id))
            is None
        )


async def test_events_a_handler_emits_carry_its_correlation_and_point_back_at_it(
    harness: BusHarness, make_consumer: MakeConsumer, db: Database, service: str
) -> None:
    async def welcome(session: AsyncSession, event: Envelope) -> None:
        user = payload_as(event, UserUpdated)
        await add_event(
            session,
            UserRegistered(
                user_id=user.user_id, role="student", full_name=user.full_name, timezone="UTC", language="en"
            ),
        )

    await make_consumer(harness.bus, {"user.updated": welcome})
    cause = _user_updated()
    await harness.bus.publish(cause)
    await eventually(lambda: _consumed(service, "user.updated", "processed") == 1, what="handled")

    async with db.transaction() as session:
        stored = (await session.execute(select(outbox_events.c.envelope))).scalars().all()
    [emitted] = [Envelope.model_validate(raw) for raw in stored]
    assert emitted.event_type == "user.registered"
    assert emitted.producer == service
    assert emitted.correlation_id == cause.correlation_id
    assert emitted.causation_id == str(cause.event_id)


async def test_an_event_waits_out_a_database_outage_without_using_up_its_attempts(
    harness: BusHarness, events_db_url: str, service: str, scratch_table: str, db: Database
) -> None:
    target = urlsplit(events_db_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as postgres_proxy:
        proxied_db = Database(postgres_proxy.rewrite_url(events_db_url), service=service, pool_size=2, max_overflow=0)
        attempts: list[str] = []
        consumer = EventConsumer(
            proxied_db, harness.bus, service=service, handlers={"user.updated": _recording_handler(scratch_table, attempts)},
            retry_backoff=(0.01, 0.05), database_retry_seconds=0.05,
        )  # fmt: skip
        await consumer.start()
        try:
            postgres_proxy.cut()
            await harness.bus.publish(_user_updated("patient"))
            await eventually(lambda: postgres_proxy.connections_seen >= 3, what="the consumer probing the database")
            postgres_proxy.restore()
            await eventually(lambda: _consumed(service, "user.updated", "processed") == 1, what="handled once back")
        finally:
            await consumer.stop()
            await proxied_db.dispose()
    assert attempts == ["patient"]
    assert _consumed(service, "user.updated", "failed") == 0
    assert [note for _, note in await _rows(db, scratch_table)] == ["patient"]


# --- RabbitMQ only: what cannot be expressed through the bus interface ---


async def test_an_unparseable_message_goes_straight_to_the_dead_letter_queue(
    rabbit_url: str, exchange: str, make_rabbit_bus: Callable[..., Awaitable[RabbitMQBus]],
    make_consumer: MakeConsumer, scratch_table: str, service: str,
) -> None:  # fmt: skip
    bus = await make_rabbit_bus(rabbit_url)
    attempts: list[str] = []
    await make_consumer(bus, {"user.updated": _recording_handler(scratch_table, attempts)})
    await eventually(lambda: bus.is_connected, what="connected")

    async with await aio_pika.connect(rabbit_url) as connection:
        channel = await connection.channel()
        target = await channel.get_exchange(exchange)
        await target.publish(aio_pika.Message(b"{not an envelope"), routing_key="user.updated")

    [dead] = await wait_for_dead_letters(rabbit_url, service, 1)
    assert dead == b"{not an envelope"
    assert attempts == []
    assert _consumed(service, "user.updated", "dead_lettered") == 1


async def test_an_event_type_without_a_handler_is_acknowledged_and_ignored(
    rabbit_url: str, make_rabbit_bus: Callable[..., Awaitable[RabbitMQBus]],
    make_consumer: MakeConsumer, scratch_table: str, service: str,
) -> None:  # fmt: skip
    attempts: list[str] = []
    handler = _recording_handler(scratch_table, attempts)

    async def unused(session: AsyncSession, event: Envelope) -> None:
        raise AssertionError("not subscribed any more")

    # an older release also handled user.registered: its binding outlives the handler
    older_bus = await make_rabbit_bus(rabbit_url)
    older = await make_consumer(older_bus, {"user.updated": handler, "user.registered": unused})
    await eventually(lambda: older_bus.is_connected, what="connected")
    await older.stop()
    bus = await make_rabbit_bus(rabbit_url)
    await make_consumer(bus, {"user.updated": handler})
    await eventually(lambda: bus.is_connected, what="connected")

    registered = UserRegistered(user_id=uuid.uuid4(), role="tutor", full_name="T", timezone="UTC", language="en")
    await bus.publish(Envelope.wrap(registered, producer="user-service", correlation_id="c"))
    await bus.publish(_user_updated("after"))

    await eventually(lambda: attempts == ["after"], what="the handled type still flows")
    assert _consumed(service, "user.registered", "ignored") == 1
    with pytest.raises(AssertionError):
        await wait_for_dead_letters(rabbit_url, service, 1, timeout=0.5)


# --- RabbitMQ only: deliveries waiting together are applied together ---


class _Gate:
    """Holds the first event in its handler until opened, so the ones published next queue up behind it."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.opened = asyncio.Event()

    async def hold_the_first(self) -> None:
        if not self.holding.is_set():
            self.holding.set()
            await self.opened.wait()


def _gated_recording_handler(table: str, applied: list[tuple[str, int]], gate: _Gate) -> EventHandler:
    """Records each application with its transaction's id, behind ``gate``; fails for POISON, as above."""

    async def handle(session: AsyncSession, event: Envelope) -> None:
        user = payload_as(event, UserUpdated)
        await gate.hold_the_first()
        transaction = int(await session.scalar(text("SELECT txid_current()")) or 0)
        applied.append((user.full_name, transaction))
        await session.execute(
            text(f"INSERT INTO {table} (id, note) VALUES (:id, :note)"),
            {"id": uuid.uuid4().hex, "note": user.full_name},
        )
        if user.full_name == POISON:
            raise RuntimeError("this handler cannot take this event")

    return handle


@dataclass
class _GatedConsumer:
    """A consumer on RabbitMQ behind a gate, recording (name, transaction id) per application."""

    bus: RabbitMQBus
    consumer: EventConsumer
    gate: _Gate
    applied: list[tuple[str, int]]

    async def backlog(self, names: list[str]) -> list[Envelope]:
        """Publish ``names`` in order while the consumer holds the first, then open the gate once the
        broker has handed over all it may (the prefetch) or all there is."""
        events = [_user_updated(name) for name in names]
        await self.bus.publish(events[0])
        await asyncio.wait_for(self.gate.holding.wait(), timeout=10)
        for event in events[1:]:
            await self.bus.publish(event)
        expected = min(len(events), 2 * CONSUMER_BATCH_SIZE)
        await eventually(lambda: self.consumer.in_flight == expected, what="the deliveries waiting behind the first")
        self.gate.opened.set()
        return events


@pytest.fixture
async def gated(
    rabbit_url: str, make_rabbit_bus: Callable[..., Awaitable[RabbitMQBus]], make_consumer: MakeConsumer,
    scratch_table: str,
) -> _GatedConsumer:  # fmt: skip
    bus = await make_rabbit_bus(rabbit_url)
    applied: list[tuple[str, int]] = []
    gate = _Gate()
    consumer = await make_consumer(bus, {"user.updated": _gated_recording_handler(scratch_table, applied, gate)})
    await eventually(lambda: bus.is_connected, what="connected")
    return _GatedConsumer(bus, consumer, gate, applied)


async def test_events_waiting_together_are_applied_in_one_transaction_each_once_in_delivery_order(
    gated: _GatedConsumer, db: Database, scratch_table: str, service: str
) -> None:
    names = [f"n{index:02d}" for index in range(3 * CONSUMER_BATCH_SIZE + 1)]

    with statements_sent(db.engine) as statements:
        events = await gated.backlog(names)
        await eventually(lambda: _consumed(service, "user.updated", "processed") == len(names), what="drained")
        await gated.bus.publish(events[5])  # the relay publishing one again: the inbox absorbs it
        await eventually(lambda: _consumed(service, "user.updated", "duplicate") == 1, what="the duplicate seen")

    applied = gated.applied
    assert [name for name, _ in applied] == names  # each once, in the order published
    assert _consumed(service, "user.updated", "processed") == len(names)
    assert sorted(note for _, note in await _rows(db, scratch_table)) == names
    transactions = [transaction for _, transaction in applied]
    sizes = [transactions.count(transaction) for transaction in dict.fromkeys(transactions)]
    # the first alone (it was alone when it arrived); the 19 waiting behind it then fill the next batch
    assert sizes[0] == 1
    assert sizes[1] == CONSUMER_BATCH_SIZE
    assert max(sizes) == CONSUMER_BATCH_SIZE
    assert len(sizes) < len(names) / 2
    inbox_inserts = [sql for sql in statements if sql.lstrip().upper().startswith("INSERT INTO INBOX_EVENTS")]
    assert len(inbox_inserts) == len(sizes) + 1  # one per transaction, and the duplicate's own


async def test_a_failing_event_in_a_batch_costs_the_others_nothing_and_runs_once_per_attempt(
    gated: _GatedConsumer, rabbit_url: str, db: Database, scratch_table: str, service: str
) -> None:
    names = ["first", "a", "b", POISON, "c", "d"]

    events = await gated.backlog(names)

    [dead] = await wait_for_dead_letters(rabbit_url, service, 1)
    assert Envelope.from_json(dead).event_id == events[3].event_id
    await eventually(lambda: _consumed(service, "user.updated", "processed") == 5, what="the others applied")
    attempts = [name for name, _ in gated.applied]
    assert attempts.count(POISON) == 3  # the delivery limit: no extra run because it shared a batch
    # a and b shared the poison's batch: rolled back with it (a batch is all or nothing), then applied
    # without it; c and d, after it, ran once
    assert [name for name in attempts if name != POISON] == ["first", "a", "b", "a", "b", "c", "d"]
    assert sorted(note for _, note in await _rows(db, scratch_table)) == sorted(["first", "a", "b", "c", "d"])
    assert _consumed(service, "user.updated", "dead_lettered") == 1


# --- RabbitMQ only: a batch handler takes each run of its events in one call ---


def _user_registered(name: str) -> Envelope:
    payload = UserRegistered(
        user_id=uuid.uuid4(), role="student", full_name=name, timezone="Europe/Moscow", language="ru", tutor_id=None
    )
    return Envelope.wrap(payload, producer="user-service", correlation_id=uuid.uuid4().hex)


@pytest.fixture
async def batching(
    rabbit_url: str, make_rabbit_bus: Callable[..., Awaitable[RabbitMQBus]], make_consumer: MakeConsumer,
    scratch_table: str,
) -> tuple[_GatedConsumer, list[list[str]]]:  # fmt: skip
    """A consumer whose user.updated handler is a BatchHandler (recording the names of each call and writing
    a row per event; failing, after writing, when POISON is among them) and whose user.registered handler is
    an ordinary one, holding the first behind a gate."""
    bus = await make_rabbit_bus(rabbit_url)
    applied: list[tuple[str, int]] = []
    calls: list[list[str]] = []
    gate = _Gate()

    async def apply_all(session: AsyncSession, events: Sequence[Envelope]) -> None:
        names = [payload_as(event, UserUpdated).full_name for event in events]
        calls.append(names)
        for event, name in zip(events, names, strict=True):
            with handling(event):
                await add_event(session, UserUpdated(**{**event.payload, "full_name": f"re:{name}"}))
            await session.execute(
                text(f"INSERT INTO {scratch_table} (id, note) VALUES (:id, :note)"),
                {"id": uuid.uuid4().hex, "note": name},
            )
        if POISON in names:
            raise RuntimeError("this handler cannot take one of these events")

    async def registered(session: AsyncSession, event: Envelope) -> None:
        await gate.hold_the_first()
        name = payload_as(event, UserRegistered).full_name
        applied.append((name, 0))
        await session.execute(
            text(f"INSERT INTO {scratch_table} (id, note) VALUES (:id, :note)"), {"id": uuid.uuid4().hex, "note": name}
        )

    handlers = {"user.updated": batch_handler(apply_all), "user.registered": registered}
    consumer = await make_consumer(bus, handlers)
    await eventually(lambda: bus.is_connected, what="connected")
    return _GatedConsumer(bus, consumer, gate, applied), calls


async def _behind_a_held_event(gated: _GatedConsumer, events: list[Envelope]) -> None:
    """Publish a user.registered the consumer holds, then ``events``; open the gate once all are handed over."""
    await gated.bus.publish(_user_registered("first"))
    await asyncio.wait_for(gated.gate.holding.wait(), timeout=10)
    for event in events:
        await gated.bus.publish(event)
    await eventually(lambda: gated.consumer.in_flight == 1 + len(events), what="the deliveries behind the first")
    gated.gate.opened.set()


async def test_a_batch_handler_gets_each_run_of_its_events_in_one_call_without_duplicates(
    batching: tuple[_GatedConsumer, list[list[str]]], db: Database, scratch_table: str, service: str
) -> None:
    gated, calls = batching
    u1, u2, u3, u4, u5 = (_user_updated(f"u{n}") for n in range(1, 6))

    # one batch: a run of three, another type, a run of two with a copy of u2 in it
    await _behind_a_held_event(gated, [u1, u2, u3, _user_registered("between"), u4, u2, u5])

    await eventually(lambda: _consumed(service, "user.updated", "processed") == 5, what="applied")
    await eventually(lambda: _consumed(service, "user.updated", "duplicate") == 1, what="the copy seen")
    assert calls == [["u1", "u2", "u3"], ["u4", "u5"]]
    assert [name for name, _ in gated.applied] == ["first", "between"]
    notes = [note for _, note in await _rows(db, scratch_table)]
    assert sorted(notes) == sorted(["first", "between", "u1", "u2", "u3", "u4", "u5"])
    async with db.transaction() as session:
        caused = dict(
            (await session.execute(select(outbox_events.c.envelope["payload"]["full_name"].astext,
                                          outbox_events.c.envelope["causation_id"].astext))).all()
        )  # fmt: skip
    # each event the run added points back at its own cause
    for event in (u1, u2, u3, u4, u5):
        assert caused[f"re:{event.payload['full_name']}"] == str(event.event_id)


async def test_a_batch_handler_failing_on_one_event_of_its_run_costs_the_others_one_application(
    batching: tuple[_GatedConsumer, list[list[str]]], rabbit_url: str, db: Database, scratch_table: str, service: str
) -> None:
    gated, calls = batching
    events = [_user_updated(name) for name in ("a", "b", POISON, "c")]

    await _behind_a_held_event(gated, events)

    [dead] = await wait_for_dead_letters(rabbit_url, service, 1)
    assert Envelope.from_json(dead).event_id == events[2].event_id
    await eventually(lambda: _consumed(service, "user.updated", "processed") == 3, what="the others applied")
    # the run failed as a whole; then each alone, to find the one at fault; then the poison's retries alone
    assert calls == [["a", "b", POISON, "c"], ["a"], ["b"], [POISON], ["c"], [POISON], [POISON]]
    assert sorted(note for _, note in await _rows(db, scratch_table)) == sorted(["first", "a", "b", "c"])
    assert _consumed(service, "user.updated", "dead_lettered") == 1


async def test_a_busy_consumer_lingers_for_a_full_batch_and_an_idle_one_applies_at_once(
    rabbit_url: str, make_rabbit_bus: Callable[..., Awaitable[RabbitMQBus]], db: Database, scratch_table: str,
    service: str,
) -> None:  # fmt: skip
    bus = await make_rabbit_bus(rabbit_url)
    applied: list[tuple[str, int]] = []
    gate = _Gate()
    # a linger far longer than the test may take: each wait below ends because the batch filled, or not at all
    consumer = EventConsumer(
        db, bus, service=service, handlers={"user.updated": _gated_recording_handler(scratch_table, applied, gate)},
        batch_size=3, linger_seconds=60,
    )  # fmt: skip
    await consumer.start()
    try:
        await eventually(lambda: bus.is_connected, what="connected")
        await bus.publish(_user_updated("first"))  # idle: applied at once, held in its handler
        await asyncio.wait_for(gate.holding.wait(), timeout=10)
        await bus.publish(_user_updated("second"))  # arrives while the first is applied: the consumer is busy
        await eventually(lambda: consumer.in_flight == 2, what="the second waiting")
        gate.opened.set()
        await eventually(lambda: len(applied) == 1, what="the first applied")
        await bus.publish(_user_updated("third"))
        await bus.publish(_user_updated("fourth"))  # the batch of three is full: the linger ends
        await eventually(lambda: len(applied) == 4, what="the lingering batch applied")
        await bus.publish(_user_updated("fifth"))  # idle again: no linger
        await eventually(lambda: len(applied) == 5, what="the idle consumer's event applied")
    finally:
        await consumer.stop()

    transactions = [transaction for _, transaction in applied]
    assert [name for name, _ in applied] == ["first", "second", "third", "fourth", "fifth"]
    assert [transactions.count(transaction) for transaction in dict.fromkeys(transactions)] == [1, 3, 1]
