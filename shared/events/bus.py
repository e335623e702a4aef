"""The event bus: a small interface, RabbitMQ in every deployment, in-process for fast unit tests.

``publish`` sends one envelope and returns once the broker has confirmed it;
``consume`` subscribes a service to event types once, at start-up. Each
delivered message is an :class:`IncomingEvent` that the consumer settles
exactly once: ``ack`` (done), ``retry`` (give it back for another attempt) or
``dead_letter`` (park it in ``<service>.dead-letter``).

RabbitMQ topology (DESIGN.md §5):

- one durable topic exchange (``repitbot.events``), routing key = event type;
- per consuming service one durable quorum queue named after the service, bound
  to the types it handles, with ``x-delivery-limit`` (RabbitMQ 3.10 enforces a
  delivery limit only on quorum queues) and a dead-letter exchange
  (``<exchange>.dead-letter``, direct) routing to ``<service>.dead-letter``.

The consumer dead-letters a message itself on its last attempt; the queue's
delivery limit is the safety net for a consumer that dies mid-message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    ConsumerTag,
)

from shared.events.envelope import Envelope
from shared.events.frames import send_together
from shared.metrics import BROKER_CONNECTED

log = logging.getLogger(__name__)


# --- the interface ----------------------------------------------------------------------


class PublishError(Exception):
    """The broker did not confirm an event; the caller keeps it and retries later."""


class BrokerUnavailable(PublishError):
    """No broker connection right now."""


class PublishTimeout(PublishError):
    """No confirmation within the publish timeout (a hanging or half-dead connection)."""


class PublishRejected(PublishError):
    """The broker refused the message (basic.nack)."""


class IncomingEvent(Protocol):
    """One delivery of one message; settle it exactly once."""

    body: bytes
    routing_key: str
    attempt: int  # 1 on the first delivery

    @property
    def final_attempt(self) -> bool:
        """True when a failure now must dead-letter rather than retry."""
        ...

    async def ack(self) -> None: ...

    async def retry(self) -> None: ...

    async def dead_letter(self) -> None: ...


OnMessage = Callable[[IncomingEvent], Awaitable[None]]


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop receiving new messages; messages already delivered can still be settled."""
        ...


class EventBus(Protocol):
    @property
    def is_connected(self) -> bool: ...

    async def start(self) -> None:
        """Return at once; connect (and reconnect) in the background."""
        ...

    async def close(self) -> None: ...

    async def publish(self, envelope: Envelope) -> None:
        """Publish with a broker confirmation; raise :class:`PublishError` on timeout or failure."""
        ...

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[PublishError | None]:
        """Publish in order, the confirmations awaited together; each one's outcome (None: confirmed)."""
        ...

    async def consume(self, service: str, event_types: Iterable[str], on_message: OnMessage) -> Subscription:
        """Subscribe ``service`` to ``event_types``; safe to call before the broker is reachable."""
        ...


def dead_letter_exchange_name(exchange: str) -> str:
    return f"{exchange}.dead-letter"


def dead_letter_queue_name(service: str) -> str:
    return f"{service}.dead-letter"


async def _hand_over(on_message: OnMessage, event: _RabbitIncomingEvent | _MemoryIncomingEvent) -> None:
    """Give one delivery to the subscriber. One it leaves unsettled (it raised, or forgot) is retried,
    or dead-lettered on its final attempt: a message is never left unacknowledged on the channel."""
    try:
        await on_message(event)
    except Exception:
        log.exception("event handler callback failed", extra={"routing_key": event.routing_key})
    finally:
        if not event.settled:
            await (event.dead_letter() if event.final_attempt else event.retry())


# --- RabbitMQ ------------------------------------------------------------------------------


async def ack_together(messages: Sequence[IncomingEvent]) -> None:
    """Acknowledge ``messages`` (deliveries of one subscription, the last delivered last): with one
    ``multiple`` ack when they are exactly the deliveries still unsettled on their RabbitMQ channel up
    to the last one — a consumer's batch settled in delivery order — else one by one. A multiple ack
    therefore never settles a delivery that is still waiting or being handled elsewhere."""
    *earlier, last = messages
    if isinstance(last, _RabbitIncomingEvent) and await last.ack_through(earlier):
        return
    for message in messages:
        await message.ack()


class _RabbitIncomingEvent:
    def __init__(
        self, message: AbstractIncomingMessage, *, delivery_limit: int, unsettled: dict[int, _RabbitIncomingEvent]
    ) -> None:
        self._message = message
        self.body = message.body
        self.routing_key = message.routing_key or ""
        # quorum queues count earlier failed deliveries in x-delivery-count
        previous = (message.headers or {}).get("x-delivery-count") or 0
        self.attempt = int(str(previous)) + 1
        self._delivery_limit = delivery_limit
        self.settled = False
        # the deliveries of its channel not settled yet, by delivery tag (shared by all of them)
        self._tag = message.delivery_tag or 0
        self._unsettled = unsettled
        unsettled[self._tag] = self

    async def ack_through(self, earlier: Sequence[IncomingEvent]) -> bool:
        """One ``multiple`` ack for ``earlier`` and this delivery, when they are all the unsettled ones up
        to this one on its channel; False (nothing done) otherwise."""
        mine = {self._tag: self, **{e._tag: e for e in earlier if isinstance(e, _RabbitIncomingEvent)}}
        if len(mine) != len(earlier) + 1 or any(
            e._unsettled is not self._unsettled or e.settled for e in mine.values()
        ):
            return False
        if {tag for tag in self._unsettled if tag <= self._tag} != mine.keys():
            return False
        for tag, event in mine.items():  # marked before the await: nothing else settles them meanwhile
            if event is not self:
                event.settled = True
                self._unsettled.pop(tag, None)
        await self._settle("ack", lambda: self._message.ack(multiple=True))
        return True

    @property
    def final_attempt(self) -> bool:
        return self.attempt >= self._delivery_limit

    async def ack(self) -> None:
        await self._settle("ack", self._message.ack)

    async def retry(self) -> None:
        await self._settle("retry", lambda: self._message.reject(requeue=True))

    async def dead_letter(self) -> None:
        await self._settle("dead_letter", lambda: self._message.reject(requeue=False))

    async def _settle(self, action: str, settle: Callable[[], Awaitable[None]]) -> None:
        self.settled = True
        self._unsettled.pop(self._tag, None)
        try:
            await settle()
        except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            # the channel is gone: the broker redelivers the message on a new one (the inbox absorbs it)
            log.warning(
                "could not settle a message; the broker will redeliver it",
                extra={"action": action, "routing_key": self.routing_key, "error": repr(exc)},
            )


@dataclass(eq=False)
class _RabbitSubscription:
    bus: RabbitMQBus
    service: str
    event_types: tuple[str, ...]
    on_message: OnMessage
    cancelled: bool = False
    # the live consumer on the current connection, if any
    queue: AbstractQueue | None = None
    consumer_tag: ConsumerTag | None = None

    async def cancel(self) -> None:
        self.cancelled = True
        await self.bus._cancel(self)


@dataclass(eq=False)
class _Link:
    """One broker connection and what was set up on it; replaced as a whole when it breaks."""

    connection: AbstractConnection
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    publisher: aiormq.Channel | None = None  # the publisher-confirms channel, aiormq's own (shared.events.frames)
    ready: bool = False

    def mark_lost(self, *_: object) -> None:
        self.lost.set()


def _confirmed(link: _Link, envelope: Envelope, confirmation: asyncio.Future[object]) -> PublishError | None:
    """What the broker answered for one published event: None for an ack."""
    error = asyncio.CancelledError() if confirmation.cancelled() else confirmation.exception()
    if error is None:
        return None
    if isinstance(error, aiormq.exceptions.DeliveryError):
        return PublishRejected(f"the broker refused {envelope.event_type}")
    link.mark_lost()  # the channel or its connection closed under it
    return BrokerUnavailable(f"publishing {envelope.event_type} failed: {error!r}")


class RabbitMQBus:
    """The bus over RabbitMQ: one connection kept alive by a supervisor task.

    ``start`` returns at once. The supervisor connects with exponential backoff,
    declares the exchange and every subscription, then waits until the
    connection (or any of its channels) closes, or a publish times out, and starts
    over. ``is_connected`` is true only while everything is set up.
    """

    def __init__(
        self,
        url: str,
        *,
        service: str,
        role: str = "consumer",
        exchange: str = "repitbot.events",
        delivery_limit: int = 5,
        publish_timeout: float = 5.0,
        prefetch: int = 1,
        heartbeat: int = 15,
        connect_timeout: float = 5.0,
        reconnect_backoff: tuple[float, float] = (0.2, 10.0),
    ) -> None:
        if delivery_limit < 1:
            raise ValueError("delivery_limit must be at least 1")
        self._url = url
        self._service = service
        # a service holds two connections, the consumer's and its outbox relay's (shared/events/relay_thread.py)
        self._role = role
        self._connected = BROKER_CONNECTED.labels(service, role)
        self._exchange_name = exchange
        self._delivery_limit = delivery_limit
        self._publish_timeout = publish_timeout
        # unacknowledged messages in flight; the callback runs once per message, concurrently, so a
        # subscriber taking more than one (EventConsumer does) must keep them in order itself
        self._prefetch = prefetch
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._backoff_initial, self._backoff_max = reconnect_backoff
        self._subscriptions: list[_RabbitSubscription] = []
        self._link: _Link | None = None
        self._setup_lock = asyncio.Lock()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._connected.set(0)

    @property
    def is_connected(self) -> bool:
        link = self._link
        return link is not None and link.ready and not link.lost.is_set() and not link.connection.is_closed

    async def start(self) -> None:
        if self._supervisor is None:
            self._closing = False
            self._supervisor = asyncio.create_task(
                self._keep_connected(), name=f"rabbitmq-bus-{self._service}-{self._role}"
            )

    async def close(self) -> None:
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        while supervisor is not None and not supervisor.done():
            supervisor.cancel()
            # a cancellation can be swallowed inside aio-pika's connect; the supervisor then goes on to
            # wait for the link to be lost: losing it ends the loop, since we are closing
            if self._link is not None:
                self._link.mark_lost()
            await asyncio.wait({supervisor}, timeout=1)
        await self._drop_link()

    async def publish(self, envelope: Envelope) -> None:
        (outcome,) = await self.publish_many([envelope])
        if outcome is not None:
            raise outcome

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[PublishError | None]:
        """Publish ``envelopes`` in order, written to the broker together and their confirmations awaited
        together (``shared.events.frames``); each one's outcome, None when the broker confirmed it."""
        if not envelopes:
            return []
        link = self._link
        if link is None or link.publisher is None or not self.is_connected:
            return [BrokerUnavailable("not connected to the broker")] * len(envelopes)
        loop = asyncio.get_running_loop()
        # aio-pika can wait forever for a confirm on a dropped connection: bound the whole of it
        deadline = loop.time() + self._publish_timeout
        try:
            async with asyncio.timeout_at(deadline):
                confirmations = await send_together(link.publisher, self._exchange_name, envelopes)
        except TimeoutError:
            return [self._timed_out(link, envelopes[0])] * len(envelopes)
        except (aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError) as exc:
            link.mark_lost()
            return [BrokerUnavailable(f"publishing {envelopes[0].event_type} failed: {exc!r}")] * len(envelopes)
        _, unconfirmed = await asyncio.wait(confirmations, timeout=max(deadline - loop.time(), 0))
        outcomes: list[PublishError | None] = []
        for envelope, confirmation in zip(envelopes, confirmations, strict=True):
            if confirmation in unconfirmed:
                confirmation.cancel()  # a late answer is ignored
                outcomes.append(self._timed_out(link, envelope))
            else:
                outcomes.append(_confirmed(link, envelope, confirmation))
        return outcomes

    def _timed_out(self, link: _Link, envelope: Envelope) -> PublishTimeout:
        # a connection that cannot confirm in time is suspect: replace it rather than wait for heartbeats
        link.mark_lost()
        return PublishTimeout(f"no confirmation for {envelope.event_type} within {self._publish_timeout}s")

    async def consume(self, service: str, event_types: Iterable[str], on_message: OnMessage) -> Subscription:
        subscription = _RabbitSubscription(self, service, tuple(sorted(set(event_types))), on_message)
        # under the set-up lock: either the connection being set up sees this subscription, or it is ready
        async with self._setup_lock:
            self._subscriptions.append(subscription)
            link = self._link
            if link is not None and link.ready:
                try:
                    async with asyncio.timeout(self._connect_timeout):
                        await self._declare_subscription(link, subscription)
                except Exception as exc:  # the supervisor declares it again on the next connection
                    log.warning("could not subscribe now; will on reconnect", extra={"error": repr(exc)})
                    link.mark_lost()
        return subscription

    # --- the connection supervisor ---

    async def _keep_connected(self) -> None:
        delay = self._backoff_initial
        while not self._closing:
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("broker unreachable", extra={"error": repr(exc), "retry_in_s": delay})
                await self._drop_link()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            delay = self._backoff_initial
            link = self._link
            assert link is not None
            self._connected.set(1)
            log.info("broker connected", extra={"exchange": self._exchange_name})
            await link.lost.wait()
            if not self._closing:
                log.warning("broker connection lost; reconnecting")
            await self._drop_link()

    async def _connect(self) -> None:
        async with asyncio.timeout(self._connect_timeout):
            connection = await aio_pika.connect(
                self._url,
                timeout=self._connect_timeout,
                heartbeat=self._heartbeat,
                client_properties={"connection_name": f"{self._service} {self._role}"},
            )
        link = _Link(connection)
        self._link = link
        connection.close_callbacks.add(link.mark_lost)
        async with self._setup_lock, asyncio.timeout(self._connect_timeout):
            channel = await self._open_channel(link, publisher_confirms=True)
            await self._declare_exchange(channel)
            link.publisher = await channel.get_underlay_channel()
            for subscription in list(self._subscriptions):
                await self._declare_subscription(link, subscription)
            link.ready = True

    async def _open_channel(self, link: _Link, *, publisher_confirms: bool) -> AbstractChannel:
        channel = await link.connection.channel(publisher_confirms=publisher_confirms)
        # a channel the broker closes (e.g. a failed ack) leaves the set-up incomplete: start over
        channel.close_callbacks.add(link.mark_lost)
        return channel

    async def _declare_exchange(self, channel: AbstractChannel) -> AbstractExchange:
        return await channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)

    async def _declare_subscription(self, link: _Link, subscription: _RabbitSubscription) -> None:
        if subscription.cancelled:
            return
        service = subscription.service
        dead_letter_exchange = dead_letter_exchange_name(self._exchange_name)
        await self._declare_queue(link, dead_letter_queue_name(service), {"x-queue-type": "quorum"})
        await self._declare_queue(
            link,
            service,
            {
                "x-queue-type": "quorum",
                "x-delivery-limit": self._delivery_limit,
                "x-dead-letter-exchange": dead_letter_exchange,
                "x-dead-letter-routing-key": service,
            },
        )
        channel = await self._open_channel(link, publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._prefetch)
        exchange = await self._declare_exchange(channel)
        dead_letters = await channel.declare_exchange(dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True)
        await (await channel.get_queue(dead_letter_queue_name(service))).bind(dead_letters, routing_key=service)
        queue = await channel.get_queue(service)
        for event_type in subscription.event_types:
            await queue.bind(exchange, routing_key=event_type)

        unsettled: dict[int, _RabbitIncomingEvent] = {}  # delivery tags are this channel's

        async def deliver(message: AbstractIncomingMessage) -> None:
            await _hand_over(
                subscription.on_message,
                _RabbitIncomingEvent(message, delivery_limit=self._delivery_limit, unsettled=unsettled),
            )

        subscription.consumer_tag = await queue.consume(deliver, no_ack=False)
        subscription.queue = queue

    async def _declare_queue(self, link: _Link, name: str, arguments: dict[str, Any]) -> None:
        """Declare a durable queue; one that exists with other arguments is used as it is.

        RabbitMQ refuses to redeclare a queue with different arguments (say, after
        ``EVENT_DELIVERY_LIMIT`` changed) by closing the channel. Failing here would
        keep the service unready forever, so the refusal is logged and the existing
        queue kept; the consumer still enforces the configured limit itself. A
        throwaway channel, unwatched, takes the refusal.
        """
        channel = await link.connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(name, durable=True, arguments=arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            log.error(
                "queue exists with other arguments; keeping them (delete the queue or use a policy to change them)",
                extra={"queue": name, "wanted": arguments, "error": str(exc)},
            )
        finally:
            if not channel.is_closed:
                await channel.close()

    async def _cancel(self, subscription: _RabbitSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)
        queue, tag = subscription.queue, subscription.consumer_tag
        subscription.queue = subscription.consumer_tag = None
        if queue is None or tag is None or not self.is_connected:
            return
        try:
            async with asyncio.timeout(self._connect_timeout):
                await queue.cancel(tag)
        except Exception as exc:  # the connection is going away anyway
            log.warning("could not cancel a consumer", extra={"error": repr(exc)})

    async def _drop_link(self) -> None:
        self._connected.set(0)
        link, self._link = self._link, None
        for subscription in self._subscriptions:
            subscription.queue = subscription.consumer_tag = None
        if link is None:
            return
        link.ready = False
        link.lost.set()
        try:
            # closing politely waits for the broker's close-ok, which a hanging peer never sends
            async with asyncio.timeout(self._connect_timeout):
                await link.connection.close()
        except Exception as exc:
            log.debug("broker connection closed uncleanly", extra={"error": repr(exc)})


# --- in-process ------------------------------------------------------------------------


@dataclass
class _MemoryDelivery:
    body: bytes
    routing_key: str
    attempt: int


class _MemoryIncomingEvent:
    def __init__(self, queue: _MemoryQueue, delivery: _MemoryDelivery) -> None:
        self._queue = queue
        self._delivery = delivery
        self.body = delivery.body
        self.routing_key = delivery.routing_key
        self.attempt = delivery.attempt
        self.settled = False

    @property
    def final_attempt(self) -> bool:
        return self.attempt >= self._queue.delivery_limit

    async def ack(self) -> None:
        self.settled = True

    async def retry(self) -> None:
        self.settled = True
        self._queue.put(_MemoryDelivery(self.body, self.routing_key, self.attempt + 1))

    async def dead_letter(self) -> None:
        self.settled = True
        self._queue.dead_letters.append(self.body)


@dataclass(eq=False)
class _MemoryQueue:
    """One service's queue, handled one message at a time like RabbitMQBus's default prefetch of 1."""

    bus: InMemoryBus
    service: str
    event_types: frozenset[str]
    on_message: OnMessage
    delivery_limit: int
    dead_letters: list[bytes]
    pending: deque[_MemoryDelivery] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False
    cancelled: bool = False
    worker: asyncio.Task[None] | None = None

    def put(self, delivery: _MemoryDelivery) -> None:
        if delivery.attempt > self.delivery_limit:  # the broker's safety net
            self.dead_letters.append(delivery.body)
            return
        self.pending.append(delivery)
        self.wakeup.set()

    @property
    def idle(self) -> bool:
        return not self.pending and not self.busy

    async def run(self) -> None:
        while not self.cancelled:
            if not self.pending:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            event = _MemoryIncomingEvent(self, self.pending.popleft())
            self.busy = True
            try:
                await _hand_over(self.on_message, event)
            finally:
                self.busy = False
                self.bus._settled.set()

    async def cancel(self) -> None:
        """Stop taking messages; the one being handled finishes."""
        self.cancelled = True
        self.bus._queues.pop(self.service, None)
        self.wakeup.set()


class InMemoryBus:
    """The bus inside one process: the same publish/consume contract, no broker.

    Messages go through the same JSON bytes as on the wire. ``published`` lists
    every envelope published; ``dead_letters[service]`` the bodies a service
    dead-lettered; ``wait_idle()`` waits until every queue is drained.
    """

    def __init__(self, *, delivery_limit: int = 5) -> None:
        self.delivery_limit = delivery_limit
        self.published: list[Envelope] = []
        self.dead_letters: dict[str, list[bytes]] = {}
        self._queues: dict[str, _MemoryQueue] = {}
        self._settled = asyncio.Event()  # set each time a queue settles a message
        self._started = False

    @property
    def is_connected(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._started = False
        queues, self._queues = list(self._queues.values()), {}
        for queue in queues:
            await queue.cancel()
            if queue.worker is not None:
                queue.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await queue.worker

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[PublishError | None]:
        outcomes: list[PublishError | None] = []
        for envelope in envelopes:
            try:
                await self.publish(envelope)
            except PublishError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    async def publish(self, envelope: Envelope) -> None:
        if not self._started:
            raise BrokerUnavailable("the in-memory bus is not started")
        body = envelope.to_json()
        self.published.append(envelope)
        for queue in self._queues.values():
            if envelope.event_type in queue.event_types:
                queue.put(_MemoryDelivery(body, envelope.event_type, attempt=1))

    async def consume(self, service: str, event_types: Iterable[str], on_message: OnMessage) -> Subscription:
        if service in self._queues:
            raise ValueError(f"{service} already consumes from this bus")
        queue = _MemoryQueue(
            bus=self,
            service=service,
            event_types=frozenset(event_types),
            on_message=on_message,
            delivery_limit=self.delivery_limit,
            dead_letters=self.dead_letters.setdefault(service, []),
        )
        queue.worker = asyncio.create_task(queue.run(), name=f"in-memory-bus-{service}")
        self._queues[service] = queue
        return queue

    async def wait_idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every published message has been settled (raises TimeoutError)."""
        async with asyncio.timeout(timeout):
            while not all(queue.idle for queue in list(self._queues.values())):
                self._settled.clear()
                await self._settled.wait()
