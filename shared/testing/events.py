"""Event assertions for tests: record what crosses the exchange, wait for it, or prove it did not happen.

    async with EventRecorder(rabbit_url) as events:
        ...  # act
        lesson = await events.wait_for("lesson.completed", lambda e: e.payload["lesson_id"] == str(lesson_id))
        await events.assert_none("payment.charged", within=1.0)

The recorder binds its own exclusive, auto-deleted queue to the exchange with
``#``, so it sees every event published after ``start()`` and takes nothing
away from the services' queues.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from sqlalchemy import text

from shared.db import Database
from shared.events.bus import dead_letter_queue_name
from shared.events.catalogue import UserUpdated
from shared.events.envelope import Envelope
from shared.events.outbox import add_event

Predicate = Callable[[Envelope], bool]

# the batch size of the event tests' consumers; their buses hand over twice as many, as the services' do
CONSUMER_BATCH_SIZE = 10


async def commit_user_updates(db: Database, count: int = 1, *, scratch_table: str | None = None) -> list[Envelope]:
    """Commit ``count`` ``user.updated`` events to ``db``'s outbox in one transaction (with a change to
    ``scratch_table``, if given); returns their envelopes in the order added."""
    async with db.transaction() as session:
        envelopes = [
            await add_event(
                session,
                UserUpdated(user_id=uuid.uuid4(), full_name=f"user {i}", timezone="Europe/Moscow", language="ru"),
            )
            for i in range(count)
        ]
        if scratch_table:
            await session.execute(
                text(f"INSERT INTO {scratch_table} (id) VALUES (:id)"), {"id": str(envelopes[0].event_id)}
            )
    return envelopes


def produced_by(db: Database) -> Predicate:
    """Events whose producer is ``db``'s service: this test's own, on a shared exchange."""
    return lambda envelope: envelope.producer == db.service


class EventRecorder:
    def __init__(self, url: str, *, exchange: str = "repitbot.events", binding_key: str = "#") -> None:
        self._url = url
        self._exchange_name = exchange
        self._binding_key = binding_key
        self._connection: AbstractConnection | None = None
        self._arrived = asyncio.Event()
        self.events: list[Envelope] = []
        self.unparseable: list[bytes] = []

    async def start(self) -> EventRecorder:
        self._connection = await aio_pika.connect(self._url, timeout=10)
        channel = await self._connection.channel()
        # declared the way the bus declares it, so recording can begin before any service runs
        exchange = await channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=self._binding_key)
        await queue.consume(self._record, no_ack=True)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def __aenter__(self) -> EventRecorder:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _record(self, message: AbstractIncomingMessage) -> None:
        try:
            self.events.append(Envelope.from_json(message.body))
        except ValueError:
            self.unparseable.append(message.body)
        self._arrived.set()

    # --- queries ---

    def of_type(self, event_type: str, predicate: Predicate | None = None) -> list[Envelope]:
        return [e for e in self.events if e.event_type == event_type and (predicate is None or predicate(e))]

    def clear(self) -> None:
        self.events.clear()
        self.unparseable.clear()

    # (ruff ASYNC109 prefers asyncio.timeout around the call; a bounded wait is the point of these helpers)
    async def wait_for(
        self,
        event_type: str,
        predicate: Predicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Envelope:
        """The first ``event_type`` event matching ``predicate``, recorded already or arriving within ``timeout``."""
        return (await self.wait_for_count(event_type, 1, predicate, timeout=timeout))[0]

    async def wait_for_count(
        self,
        event_type: str,
        count: int,
        predicate: Predicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[Envelope]:
        """Wait until at least ``count`` matching events were recorded; returns all of them."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    matches = self.of_type(event_type, predicate)
                    if len(matches) >= count:
                        return matches
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            found = len(self.of_type(event_type, predicate))
            raise AssertionError(
                f"expected {count} {event_type!r} event(s) within {timeout}s, got {found}; recorded: {self._summary()}"
            ) from None

    async def assert_none(self, event_type: str, predicate: Predicate | None = None, within: float = 1.0) -> None:
        """Assert that no matching event has arrived, waiting ``within`` seconds for a late one."""
        try:
            await self.wait_for(event_type, predicate, timeout=within)
        except AssertionError:
            return
        raise AssertionError(f"unexpected {event_type!r} event; recorded: {self._summary()}")

    def _summary(self) -> str:
        counts = Counter(e.event_type for e in self.events)
        return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) or "nothing"


async def eventually(
    check: Callable[[], Awaitable[bool] | bool],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
    what: str = "",
) -> None:
    """Wait until ``check()`` (sync or async) is true, for an event's effect; AssertionError after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not true within {timeout}s: {what or check}") from None


async def wait_for_dead_letters(
    url: str,
    service: str,
    count: int = 1,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> list[bytes]:
    """Take at least ``count`` messages out of ``<service>.dead-letter`` (waiting up to ``timeout``); their bodies."""
    bodies: list[bytes] = []
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(dead_letter_queue_name(service), passive=True)
        async with asyncio.timeout(timeout):
            while len(bodies) < count:
                message = await queue.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                bodies.append(message.body)
    except TimeoutError:
        raise AssertionError(
            f"expected {count} dead letter(s) for {service} within {timeout}s, got {len(bodies)}"
        ) from None
    finally:
        await connection.close()
    return bodies


async def publish(url: str, *envelopes: Envelope, exchange: str = "repitbot.events") -> None:
    """Publish events on the exchange as a producer would (routing key = event type), with confirms.

    For a consumer's tests that must not depend on the producing service: build the envelope
    from the catalogue (``Envelope.wrap(LessonCompleted(...), producer="lesson-service", ...)``);
    publishing the same envelope twice plays a duplicated delivery.
    """
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        for envelope in envelopes:
            message = aio_pika.Message(
                body=envelope.to_json(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(envelope.event_id),
                type=envelope.event_type,
                headers={"version": envelope.version},
            )
            await target.publish(message, routing_key=envelope.event_type)
    finally:
        await connection.close()
