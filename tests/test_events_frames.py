"""``shared.events.frames.send_together`` against the real broker: each member of aiormq's channel it
relies on (decision 0025) held to its meaning — delivery tags that stay in step with the broker's
numbering, whoever publishes on the channel; confirmations the reader settles, nacks included; futures
the channel fails when it closes; the writer's queue and frames, a body split over several frames."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import aiormq
import pytest

from shared.events.bus import BrokerUnavailable, PublishRejected, RabbitMQBus
from shared.events.catalogue import UserUpdated
from shared.events.envelope import Envelope
from shared.events.frames import send_together
from shared.testing.events import eventually

pytest_plugins = ["tests.events_fixtures"]

MakeBus = Callable[..., Awaitable[RabbitMQBus]]


def _event(name: str = "Ann") -> Envelope:
    payload = UserUpdated(user_id=uuid.uuid4(), full_name=name, timezone="Europe/Moscow", language="ru")
    return Envelope.wrap(payload, producer="test", correlation_id=uuid.uuid4().hex)


@pytest.fixture
async def broker(rabbit_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel of the test's own, to declare queues and read what arrived."""
    connection = await aio_pika.connect(rabbit_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def _bus(make_rabbit_bus: MakeBus, rabbit_url: str) -> RabbitMQBus:
    bus = await make_rabbit_bus(rabbit_url)
    await eventually(lambda: bus.is_connected, what="bus connected")
    return bus


def _channel(bus: RabbitMQBus) -> aiormq.Channel:
    """The bus's publisher-confirms channel, aiormq's own: the one ``send_together`` writes on."""
    assert bus._link is not None and bus._link.publisher is not None
    return bus._link.publisher


async def _bound_queue(
    channel: aio_pika.abc.AbstractChannel, exchange: str, **arguments: object
) -> aio_pika.abc.AbstractQueue:
    queue = await channel.declare_queue(exclusive=True, arguments=arguments or None)
    await queue.bind(exchange, routing_key="#")
    return queue


async def _drain(queue: aio_pika.abc.AbstractQueue, count: int) -> list[Envelope]:
    received = []
    for _ in range(count):
        message = await queue.get(timeout=5)
        assert message is not None
        await message.ack()
        received.append(Envelope.from_json(message.body))
    return received


async def test_a_batch_and_single_publishes_on_one_channel_are_all_confirmed_and_arrive_in_order(
    make_rabbit_bus: MakeBus, rabbit_url: str, exchange: str, broker: aio_pika.abc.AbstractChannel
) -> None:
    bus = await _bus(make_rabbit_bus, rabbit_url)
    queue = await _bound_queue(broker, exchange)
    first, batch, last = _event(), [_event() for _ in range(30)], _event()

    # one publish, a batch and another publish at once on the channel: if the batch took its delivery
    # tags out of step with the broker's numbering, a confirmation would settle the wrong publish and
    # another never (a timeout here)
    outcomes = await asyncio.gather(bus.publish(first), bus.publish_many(batch), bus.publish(last))

    assert outcomes == [None, [None] * 30, None]
    assert await _drain(queue, 32) == [first, *batch, last]
    assert not (await bus.publish_many([_event()]))[0]  # and the channel goes on


async def test_a_published_event_carries_the_properties_operators_and_the_dead_letter_tools_read(
    make_rabbit_bus: MakeBus, rabbit_url: str, exchange: str, broker: aio_pika.abc.AbstractChannel
) -> None:
    """The frames are ours, not an aio_pika.Message's: the message must still be the one aio-pika would
    have sent, persistent, with the envelope's identity in its properties."""
    bus = await _bus(make_rabbit_bus, rabbit_url)
    queue = await _bound_queue(broker, exchange)
    envelope = _event()

    await bus.publish(envelope)

    message = await queue.get(timeout=5)
    assert message is not None
    await message.ack()
    assert Envelope.from_json(message.body) == envelope
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (message.content_type, message.message_id, message.type) == (
        "application/json",
        str(envelope.event_id),
        envelope.event_type,
    )
    assert (message.correlation_id, message.app_id) == (envelope.correlation_id, envelope.producer)
    assert message.timestamp == envelope.occurred_at.replace(microsecond=0)
    assert message.headers == {"version": envelope.version}


async def test_what_the_broker_refuses_is_told_apart_from_what_it_confirmed_in_the_same_batch(
    make_rabbit_bus: MakeBus, rabbit_url: str, exchange: str, broker: aio_pika.abc.AbstractChannel
) -> None:
    bus = await _bus(make_rabbit_bus, rabbit_url)
    # a queue that takes two messages and refuses the rest: the broker nacks those publishes
    await _bound_queue(broker, exchange, **{"x-max-length": 2, "x-overflow": "reject-publish"})

    outcomes = await bus.publish_many([_event() for _ in range(4)])

    assert outcomes[:2] == [None, None]
    assert [type(outcome) for outcome in outcomes[2:]] == [PublishRejected, PublishRejected]
    assert bus.is_connected  # a refusal is the message's fate, not the connection's


async def test_a_batch_on_a_channel_the_broker_closes_fails_at_once_and_the_bus_reconnects(
    make_rabbit_bus: MakeBus, rabbit_url: str, exchange: str, broker: aio_pika.abc.AbstractChannel
) -> None:
    bus = await _bus(make_rabbit_bus, rabbit_url)
    await broker.exchange_delete(exchange)  # publishing to it now makes the broker close the channel

    outcomes = await bus.publish_many([_event() for _ in range(5)])

    # the channel's close failed them (a PublishTimeout would mean they waited for nothing)
    assert [type(outcome) for outcome in outcomes] == [BrokerUnavailable] * 5
    await eventually(lambda: bus.is_connected, what="reconnected, the exchange declared again")
    queue = await _bound_queue(broker, exchange)
    envelope = _event()
    assert await bus.publish_many([envelope]) == [None]
    assert await _drain(queue, 1) == [envelope]


async def test_a_body_longer_than_a_frame_is_split_and_arrives_whole(
    make_rabbit_bus: MakeBus, rabbit_url: str, exchange: str, broker: aio_pika.abc.AbstractChannel
) -> None:
    bus = await _bus(make_rabbit_bus, rabbit_url)
    queue = await _bound_queue(broker, exchange)
    publisher = _channel(bus)
    large = Envelope(
        event_id=uuid.uuid4(),
        event_type="user.updated",
        version=1,
        occurred_at=datetime.now(UTC),
        producer="test",
        correlation_id="large",
        payload={"notes": "x" * (3 * publisher.max_content_size)},
    )
    small = _event()

    assert await bus.publish_many([large, small]) == [None, None]
    assert await _drain(queue, 2) == [large, small]


async def test_a_batch_cancelled_before_it_was_queued_gives_its_delivery_tags_back(
    make_rabbit_bus: MakeBus, rabbit_url: str, exchange: str, broker: aio_pika.abc.AbstractChannel
) -> None:
    bus = await _bus(make_rabbit_bus, rabbit_url)
    queue = await _bound_queue(broker, exchange)
    channel = _channel(bus)
    tag_before = channel.delivery_tag
    writer_queue = channel.write_queue
    full: asyncio.Queue[object] = asyncio.Queue(maxsize=1)
    full.put_nowait(object())
    channel.write_queue = full  # the writer is behind: queueing the batch waits
    try:
        sending = asyncio.create_task(send_together(channel, exchange, [_event() for _ in range(3)]))
        await eventually(lambda: channel.delivery_tag == tag_before + 3, what="tags taken, waiting to queue")
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
    finally:
        channel.write_queue = writer_queue

    assert channel.delivery_tag == tag_before
    assert not any(tag > tag_before for tag in channel.confirmations)
    # the broker never saw those three: the next publish takes the next tag and is confirmed
    envelope = _event()
    assert await bus.publish_many([envelope]) == [None]
    assert await _drain(queue, 1) == [envelope]
