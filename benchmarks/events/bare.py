"""The baseline: the bare bus round trip, with nothing of ours but ``RabbitMQBus`` itself.

The harness publishes with ``RabbitMQBus.publish`` (a persistent message, a publisher
confirm, as the relay's messages are) to an exchange of its own in the bench vhost; a
consumer in another process (as student-service is) takes it off a queue declared
exactly like a service's (quorum, delivery limit, dead-letter exchange; prefetch 1),
parses the envelope and acknowledges it. No outbox, no relay, no inbox, no database,
no handler: the ratios of the full path to this say what those add.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection

from shared.events.bus import IncomingEvent, RabbitMQBus
from shared.events.catalogue import LessonCompleted
from shared.events.envelope import Envelope

EXCHANGE = "bench.bare"
QUEUE = "bench-bare-consumer"
CONNECT_TIMEOUT_SECONDS = 30


def envelopes(count: int, *, tutor_id: str, student_id: str) -> list[Envelope]:
    """``count`` ``lesson.completed`` envelopes shaped like lesson-service's (a graded, priced lesson)."""
    starts = datetime.now(UTC) - timedelta(days=2)
    return [
        Envelope.wrap(
            LessonCompleted(
                lesson_id=uuid.uuid4(),
                tutor_id=uuid.UUID(tutor_id),
                student_id=uuid.UUID(student_id),
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
                subject="Mathematics",
                price=100_000,
                currency="RUB",
                grade=5,
            ),
            producer="lesson-service",
            correlation_id=uuid.uuid4().hex,
        )
        for _ in range(count)
    ]


class BareBus:
    """The publishing side in this process, the consuming side in a child process."""

    def __init__(self, rabbit_url: str) -> None:
        self._url = rabbit_url
        self._publisher = RabbitMQBus(rabbit_url, service="bench-bare-publisher", exchange=EXCHANGE)
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and a loop
        self._pipe, child_end = context.Pipe()
        self._consumer = context.Process(target=_consumer_main, args=(rabbit_url, child_end), name="bench-bare")

    async def start(self) -> None:
        self._consumer.start()
        ready = await asyncio.to_thread(self._pipe.poll, CONNECT_TIMEOUT_SECONDS)
        if not ready or self._pipe.recv() != "ready":
            raise RuntimeError("the bare-bus consumer did not connect")
        await self._publisher.start()
        await _until(lambda: self._publisher.is_connected, "the bare-bus publisher did not connect")

    async def publish(self, envelope: Envelope) -> float:
        """Publish (with its confirm); returns the wall-clock time it was handed to the bus."""
        sent = time.time()
        await self._publisher.publish(envelope)
        return sent

    async def received(self, event_ids: Sequence[str], timeout: float) -> dict[str, float]:  # noqa: ASYNC109
        """Event id → when the consumer had it, once all ``event_ids`` arrived (or ``timeout`` passed)."""
        self._pipe.send(("wait", list(event_ids), timeout))
        arrived: dict[str, float] = await asyncio.to_thread(self._pipe.recv)
        return arrived

    async def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._pipe.send(("stop", [], 0))
        await self._publisher.close()
        await asyncio.to_thread(self._consumer.join, 15)
        if self._consumer.is_alive():
            self._consumer.terminate()


async def _until(condition: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        await asyncio.sleep(0.05)


# --- the child process ------------------------------------------------------------------------


def _consumer_main(rabbit_url: str, pipe: Connection) -> None:
    asyncio.run(_consume(rabbit_url, pipe))


async def _consume(rabbit_url: str, pipe: Connection) -> None:
    arrived: dict[str, float] = {}
    changed = asyncio.Event()

    async def on_message(message: IncomingEvent) -> None:
        envelope = Envelope.from_json(message.body)  # what EventConsumer does first
        arrived[str(envelope.event_id)] = time.time()
        await message.ack()
        changed.set()

    bus = RabbitMQBus(rabbit_url, service=QUEUE, exchange=EXCHANGE)
    await bus.start()
    await bus.consume(QUEUE, [LessonCompleted.event_type], on_message)
    await _until(lambda: bus.is_connected, "the bare-bus consumer did not connect")
    pipe.send("ready")
    try:
        while True:
            command, wanted, timeout = await asyncio.to_thread(pipe.recv)
            if command == "stop":
                return
            await _wait_for(set(wanted), arrived, changed, timeout)
            pipe.send({event_id: arrived[event_id] for event_id in wanted if event_id in arrived})
    finally:
        await bus.close()


async def _wait_for(wanted: set[str], arrived: dict[str, float], changed: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not wanted <= arrived.keys():
                changed.clear()
                await changed.wait()
