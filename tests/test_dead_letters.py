"""The dead-letter tool against the real broker: what a service parked is listed where it stays, and
moved back to that service alone once its handler is fixed, all of it or one event at a time."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.events.bus import IncomingEvent, RabbitMQBus
from shared.events.catalogue import UserUpdated, payload_as
from shared.events.consumer import EventConsumer
from shared.events.dead_letters import NoSuchQueue, look, main, replay
from shared.events.envelope import Envelope
from shared.testing.events import eventually

pytest_plugins = ["tests.events_fixtures"]

MakeBus = Callable[..., Awaitable[RabbitMQBus]]


def _user_updated(name: str) -> Envelope:
    payload = UserUpdated(user_id=uuid.uuid4(), full_name=name, timezone="Europe/Moscow", language="ru")
    return Envelope.wrap(payload, producer="user-service", correlation_id=uuid.uuid4().hex)


async def _applied(db: Database, table: str) -> list[str]:
    async with db.transaction() as session:
        return list((await session.execute(text(f"SELECT note FROM {table} ORDER BY note"))).scalars())


async def test_dead_letters_are_listed_in_place_and_replayed_to_their_service_alone_once_fixed(
    rabbit_url: str, make_rabbit_bus: MakeBus, db: Database, scratch_table: str, service: str
) -> None:
    broken = True

    async def handle(session: AsyncSession, event: Envelope) -> None:
        if broken:
            raise RuntimeError("a bug in this handler")
        name = payload_as(event, UserUpdated).full_name
        await session.execute(
            text(f"INSERT INTO {scratch_table} (id, note) VALUES (:id, :note)"), {"id": name, "note": name}
        )

    bus = await make_rabbit_bus(rabbit_url)
    consumer = EventConsumer(db, bus, service=service, handlers={"user.updated": handle}, retry_backoff=(0.01, 0.05))
    await consumer.start()
    # another service subscribed to the same events: a replay must not reach it a second time
    elsewhere: list[str] = []

    async def other_service(message: IncomingEvent) -> None:
        elsewhere.append(str(Envelope.from_json(message.body).event_id))
        await message.ack()

    other = await make_rabbit_bus(rabbit_url, service=f"{service}-other")
    await other.consume(f"{service}-other", ["user.updated"], other_service)
    await eventually(lambda: bus.is_connected and other.is_connected, what="both subscribed")
    first, second = _user_updated("first"), _user_updated("second")
    try:
        await bus.publish(first)
        await bus.publish(second)

        await eventually(lambda: _count(look(rabbit_url, service), 2), what="both events dead-lettered")
        letters = await look(rabbit_url, service)
        assert {(d.event_type, d.event_id, d.reason) for d in letters} == {
            ("user.updated", str(first.event_id), "rejected"),
            ("user.updated", str(second.event_id), "rejected"),
        }
        assert len(await look(rabbit_url, service)) == 2  # listing left them where they were

        broken = False  # the fix is deployed
        moved = await replay(rabbit_url, service, {str(second.event_id)})

        assert [d.event_id for d in moved] == [str(second.event_id)]
        await eventually(lambda: _equals(_applied(db, scratch_table), ["second"]), what="the replayed event applied")
        assert [d.event_id for d in await look(rabbit_url, service)] == [str(first.event_id)]

        assert [d.event_id for d in await replay(rabbit_url, service)] == [str(first.event_id)]
        await eventually(lambda: _equals(_applied(db, scratch_table), ["first", "second"]), what="both applied")
        assert await look(rabbit_url, service) == []
        assert sorted(elsewhere) == sorted([str(first.event_id), str(second.event_id)])  # once each, from the publish
    finally:
        await consumer.stop()


async def test_a_service_without_queues_is_named_not_guessed(rabbit_url: str, service: str) -> None:
    with pytest.raises(NoSuchQueue, match=f"{service}.dead-letter"):
        await look(rabbit_url, service)
    with pytest.raises(NoSuchQueue, match=f"'{service}'"):
        await replay(rabbit_url, service)


async def test_the_command_says_what_it_found(
    rabbit_url: str, service: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RABBITMQ_URL", rabbit_url)

    assert await _command(["list", service]) == 1
    assert "is '" + service + "' the name of a service that consumes events?" in capsys.readouterr().out


async def test_an_unreachable_broker_is_said_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again at once: nothing listens there
    made_up = "not-a-real-one"  # a password for this test alone (nothing listens on the port)
    monkeypatch.setenv("RABBITMQ_URL", f"amqp://ops:{made_up}@127.0.0.1:{port}/")

    assert await _command(["replay", "payment-service"]) == 1
    said = capsys.readouterr().out
    assert f"cannot reach the broker at amqp://ops:***@127.0.0.1:{port}/" in said
    assert made_up not in said


async def _command(argv: list[str]) -> int:
    """The command as a shell runs it: ``main`` with its own ``asyncio.run``, in a thread of its own, so it
    leaves this thread's event loop as it found it (``asyncio.run`` here would unset it, and aio-pika
    connections collected later could then not close themselves)."""
    return await asyncio.to_thread(main, argv)


async def _count(letters: Awaitable[list[object]], wanted: int) -> bool:
    return len(await letters) == wanted


async def _equals(value: Awaitable[list[str]], wanted: list[str]) -> bool:
    return await value == wanted
