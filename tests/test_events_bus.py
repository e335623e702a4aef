"""RabbitMQBus under faults: a hanging broker, a broker down at start-up, a cut connection."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aio_pika
import pytest
from prometheus_client import REGISTRY

from shared.events.bus import BrokerUnavailable, IncomingEvent, PublishTimeout, RabbitMQBus, ack_together
from shared.events.catalogue import UserRegistered, UserUpdated
from shared.events.envelope import Envelope
from shared.testing.events import EventRecorder, eventually
from shared.testing.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from tests.events_fixtures import BusHarness

pytest_plugins = ["tests.events_fixtures"]

MakeBus = Callable[..., Awaitable[RabbitMQBus]]


def _event() -> Envelope:
    payload = UserUpdated(user_id=uuid.uuid4(), full_name="Ann", timezone="Europe/Moscow", language="ru")
    return Envelope.wrap(payload, producer="test", correlation_id=uuid.uuid4().hex)


def _broker_connected(service: str) -> float | None:
    return REGISTRY.get_sample_value("broker_connected", {"service": service, "role": "consumer"})


class _Inbox:
    """Collects what a subscription receives and acks it."""

    def __init__(self) -> None:
        self.event_ids: list[str] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: IncomingEvent) -> None:
        self.event_ids.append(str(Envelope.from_json(message.body).event_id))
        self.arrived.set()
        await message.ack()

    async def wait_for(self, envelope: Envelope) -> None:
        await eventually(lambda: str(envelope.event_id) in self.event_ids, what=f"{envelope.event_id} consumed")


async def test_each_service_receives_the_types_it_subscribed_to_and_nothing_else(
    harness: BusHarness, service: str
) -> None:
    only_updates, everything = _Inbox(), _Inbox()
    await harness.bus.consume(f"{service}-a", ["user.updated"], only_updates)
    await harness.bus.consume(f"{service}-b", ["user.updated", "user.registered"], everything)
    if isinstance(harness.bus, RabbitMQBus):
        await eventually(lambda: harness.bus.is_connected, what="subscriptions declared")
    registered = Envelope.wrap(
        UserRegistered(user_id=uuid.uuid4(), role="tutor", full_name="T", timezone="UTC", language="en"),
        producer="test",
        correlation_id="c",
    )
    updated = _event()

    await harness.bus.publish(registered)
    await harness.bus.publish(updated)

    await everything.wait_for(registered)
    await everything.wait_for(updated)
    await only_updates.wait_for(updated)
    assert only_updates.event_ids == [str(updated.event_id)]


async def test_publish_into_a_hanging_connection_fails_within_the_timeout_and_recovers(
    rabbit_url: str, rabbit_proxy: TcpProxy, make_rabbit_bus: MakeBus, recorder: EventRecorder
) -> None:
    bus = await make_rabbit_bus(rabbit_proxy.rewrite_url(rabbit_url), publish_timeout=0.5)
    await eventually(lambda: bus.is_connected, what="connected")
    await bus.publish(_event())

    rabbit_proxy.hang()
    async with asyncio.timeout(10):  # the bound is the test's: publish must give up long before
        with pytest.raises(PublishTimeout):
            await bus.publish(_event())
        # the suspect connection is dropped, and publishing refuses at once instead of hanging again
        await eventually(lambda: not bus.is_connected, what="hanging connection given up")
        with pytest.raises(BrokerUnavailable):
            await bus.publish(_event())

    rabbit_proxy.restore()
    await eventually(lambda: bus.is_connected, what="reconnected")
    after = _event()
    await bus.publish(after)
    await recorder.wait_for("user.updated", lambda e: e.event_id == after.event_id)


async def test_close_does_not_hang_on_a_hanging_broker(
    rabbit_url: str, rabbit_proxy: TcpProxy, make_rabbit_bus: MakeBus
) -> None:
    bus = await make_rabbit_bus(rabbit_proxy.rewrite_url(rabbit_url), connect_timeout=0.5)
    await bus.consume("hang-close", ["user.updated"], _Inbox())
    await eventually(lambda: bus.is_connected, what="connected")
    rabbit_proxy.hang()
    async with asyncio.timeout(10):
        await bus.close()
    assert not bus.is_connected


async def test_close_returns_even_when_a_cancellation_is_swallowed_while_connecting(
    rabbit_url: str, make_rabbit_bus: MakeBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # seen in the bot's restarts: the cancel lands inside aio-pika's connect, which completes anyway, and
    # the supervisor goes on to wait for the connection to be lost
    bus = await make_rabbit_bus(rabbit_url)
    await eventually(lambda: bus.is_connected, what="connected")
    real_connect = bus._connect
    connecting = asyncio.Event()

    async def connect_swallowing_a_cancel() -> None:
        connecting.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # what a library may do: the task stays "cancelling" but carries on
        await real_connect()

    monkeypatch.setattr(bus, "_connect", connect_swallowing_a_cancel)
    assert bus._link is not None
    bus._link.mark_lost()  # the supervisor reconnects, through the swallowing connect
    await asyncio.wait_for(connecting.wait(), 10)
    async with asyncio.timeout(10) as deadline:
        await bus.close()
    assert not deadline.expired()  # returned by itself, not cut off (close must not swallow that either)
    assert not bus.is_connected


async def test_a_bus_started_while_the_broker_is_unreachable_connects_later_and_consumes(
    rabbit_url: str, rabbit_proxy: TcpProxy, make_rabbit_bus: MakeBus, service: str
) -> None:
    rabbit_proxy.cut()
    bus = await make_rabbit_bus(rabbit_proxy.rewrite_url(rabbit_url))  # start() returns at once
    inbox = _Inbox()
    await bus.consume(service, ["user.updated"], inbox)  # declared once the broker is reachable
    await eventually(lambda: rabbit_proxy.connections_seen >= 2, what="retrying with backoff")
    assert not bus.is_connected
    with pytest.raises(BrokerUnavailable):
        await bus.publish(_event())

    assert _broker_connected(service) == 0

    rabbit_proxy.restore()
    await eventually(lambda: bus.is_connected, what="connected once reachable")
    assert _broker_connected(service) == 1
    event = _event()
    await bus.publish(event)
    await inbox.wait_for(event)

    await bus.close()
    assert not bus.is_connected and _broker_connected(service) == 0


async def test_consumers_are_declared_again_after_the_connection_is_cut(
    rabbit_url: str, rabbit_proxy: TcpProxy, make_rabbit_bus: MakeBus, service: str
) -> None:
    consuming = await make_rabbit_bus(rabbit_proxy.rewrite_url(rabbit_url))
    publishing = await make_rabbit_bus(rabbit_url)  # straight to the broker
    inbox = _Inbox()
    await consuming.consume(service, ["user.updated"], inbox)
    await eventually(lambda: consuming.is_connected and publishing.is_connected, what="both connected")
    first = _event()
    await publishing.publish(first)
    await inbox.wait_for(first)

    rabbit_proxy.cut()
    await eventually(lambda: not consuming.is_connected, what="the cut noticed")
    during_cut = _event()
    await publishing.publish(during_cut)  # waits in the durable queue

    rabbit_proxy.restore()
    await eventually(lambda: consuming.is_connected, what="reconnected")
    after = _event()
    await publishing.publish(after)
    await inbox.wait_for(during_cut)
    await inbox.wait_for(after)


def _queues(vhost: str) -> dict[str, str]:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run(
        [exe, "-q", "list_queues", "-p", vhost, "name", "type", "--no-table-headers"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return dict(line.split("\t")[:2] for line in out.strip().splitlines() if "\t" in line)


async def test_each_service_gets_a_quorum_queue_and_a_dead_letter_queue(
    rabbit_url: str, make_rabbit_bus: MakeBus, service: str
) -> None:
    bus = await make_rabbit_bus(rabbit_url)
    await bus.consume(service, ["user.updated", "user.registered"], _Inbox())
    await eventually(lambda: bus.is_connected, what="connected")
    queues = await asyncio.to_thread(_queues, urlsplit(rabbit_url).path.lstrip("/"))
    assert queues[service] == "quorum"
    assert queues[f"{service}.dead-letter"] == "quorum"


async def test_a_changed_delivery_limit_does_not_keep_the_service_from_consuming(
    rabbit_url: str, make_rabbit_bus: MakeBus, service: str
) -> None:
    first = await make_rabbit_bus(rabbit_url, delivery_limit=3)
    await first.consume(service, ["user.updated"], _Inbox())
    await eventually(lambda: first.is_connected, what="connected")
    await first.close()

    # the next release runs with another limit: the queue keeps its arguments, the service still consumes
    redeployed = await make_rabbit_bus(rabbit_url, delivery_limit=5)
    inbox = _Inbox()
    await redeployed.consume(service, ["user.updated"], inbox)
    await eventually(lambda: redeployed.is_connected, what="connected despite the old queue arguments")
    event = _event()
    await redeployed.publish(event)
    await inbox.wait_for(event)


# --- a consumer's batch acknowledged at once ---


class _Held:
    """Keeps every delivery unsettled (its handler waits) until released, as a consumer's batch waits."""

    def __init__(self) -> None:
        self.messages: list[IncomingEvent] = []
        self.released = asyncio.Event()

    async def __call__(self, message: IncomingEvent) -> None:
        self.messages.append(message)
        await self.released.wait()


async def _ready_count(rabbit_url: str, queue: str) -> int:
    connection = await aio_pika.connect(rabbit_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def _three_held(rabbit_url: str, make_rabbit_bus: MakeBus, service: str) -> tuple[RabbitMQBus, _Held]:
    """A subscription holding three deliveries unsettled, in delivery order."""
    bus = await make_rabbit_bus(rabbit_url)
    held = _Held()
    await bus.consume(service, ["user.updated"], held)
    await eventually(lambda: bus.is_connected, what="connected")
    for _ in range(3):
        await bus.publish(_event())
    await eventually(lambda: len(held.messages) == 3, what="three deliveries held")
    return bus, held


@pytest.fixture
def acks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``multiple`` flag of every ack sent (aio-pika's own ack, wrapped)."""
    sent: list[bool] = []
    original = aio_pika.IncomingMessage.ack

    async def ack(self: aio_pika.IncomingMessage, multiple: bool = False) -> None:
        sent.append(multiple)
        await original(self, multiple=multiple)

    monkeypatch.setattr(aio_pika.IncomingMessage, "ack", ack)
    return sent


async def test_a_batch_settled_in_delivery_order_is_acknowledged_with_one_ack(
    rabbit_url: str, make_rabbit_bus: MakeBus, service: str, acks: list[bool]
) -> None:
    bus, held = await _three_held(rabbit_url, make_rabbit_bus, service)

    await ack_together(held.messages)
    held.released.set()

    assert acks == [True]  # one ack for the three
    await bus.close()
    assert await _ready_count(rabbit_url, service) == 0  # none comes back


async def test_a_multiple_ack_never_settles_an_earlier_delivery_still_waiting(
    rabbit_url: str, make_rabbit_bus: MakeBus, service: str, acks: list[bool]
) -> None:
    bus, held = await _three_held(rabbit_url, make_rabbit_bus, service)

    await ack_together(held.messages[1:])  # the first is still being handled

    assert acks == [False, False]  # one by one: a multiple ack would have settled the first too
    assert not held.messages[0].settled  # type: ignore[attr-defined]
    await bus.close()  # the first, never settled, goes back to the queue
    # the broker cancels the consumer first and returns its deliveries a moment after the close
    await eventually(lambda: _ready_count(rabbit_url, service), what="the unsettled delivery back in the queue")
    assert await _ready_count(rabbit_url, service) == 1  # and only that one
    held.released.set()
