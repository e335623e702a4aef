"""Dead letters: the events a service parked in ``<service>.dead-letter``, and moving them back.

An event lands there when its handler failed on every attempt, or its body could not be read
(``shared/events/consumer.py``). Once the cause is fixed and deployed, ``replay`` moves the dead letters
back to the service's own queue: not to the exchange, so no other service sees them again. Each copy is
confirmed by the broker before its dead letter is acknowledged, so a crash in between leaves the event in
both queues, never in neither; the inbox applies it once either way. A replayed event starts with every
attempt of the delivery limit again.

    python -m shared.events.dead_letters list payment-service
    python -m shared.events.dead_letters replay payment-service [--event-id ID ...]

``make dead-letters SERVICE=payment-service`` runs it against the local fleet (``REPLAY=1`` to move them
back); in compose, ``docker compose exec payment-service python -m shared.events.dead_letters ...``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.connection import make_url

from shared.config import ServiceSettings
from shared.events.bus import dead_letter_queue_name
from shared.events.envelope import Envelope

# what the broker wrote on the way into the dead-letter queue (and the attempts counted before it): a copy
# going back starts afresh without them
_BROKER_HEADERS = frozenset(
    {
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)


class NoSuchQueue(LookupError):
    """The queue does not exist on the broker: the service never subscribed here (a wrong name?)."""


@dataclass(frozen=True)
class DeadLetter:
    event_type: str  # "?" when the body is not an event
    event_id: str  # "?" likewise
    occurred_at: str
    reason: str  # the broker's: "rejected" (the consumer gave up on it), "delivery_limit", ...

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers = message.headers or {}
        reason = str(headers.get("x-first-death-reason") or _first_death(headers).get("reason") or "?")
        try:
            envelope = Envelope.from_json(message.body)
        except ValueError:
            return cls("?", "?", "?", f"{reason} (not a readable event)")
        return cls(envelope.event_type, str(envelope.event_id), envelope.occurred_at.isoformat(), reason)


def _first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death")
    return dict(deaths[0]) if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}


async def look(rabbitmq_url: str, service: str) -> list[DeadLetter]:
    """Every dead letter of ``service``, oldest first; they all stay where they are."""
    async with _channel(rabbitmq_url) as channel:
        # each is held unacknowledged; closing the channel gives every one back
        return [DeadLetter.of(message) async for message in _held(channel, dead_letter_queue_name(service))]


async def replay(rabbitmq_url: str, service: str, event_ids: Collection[str] | None = None) -> list[DeadLetter]:
    """Move ``service``'s dead letters (only those of ``event_ids``, when given) back to its queue; the
    ones moved. Only the letters there when it starts: one that fails again and comes back meanwhile
    waits for the next replay."""
    async with _channel(rabbitmq_url) as channel:
        await _queue(channel, service)  # the way back must exist before anything leaves
        moved = []
        async for message in _held(channel, dead_letter_queue_name(service)):
            letter = DeadLetter.of(message)
            if event_ids is not None and letter.event_id not in event_ids:
                continue  # given back when the channel closes
            # the default exchange routes by queue name: the service's queue alone; returns after the confirm
            await channel.default_exchange.publish(_copy(message), routing_key=service, mandatory=True)
            await message.ack()
            moved.append(letter)
        return moved


async def _held(channel: AbstractChannel, queue_name: str) -> AsyncIterator[AbstractIncomingMessage]:
    """The messages in the queue when it is called, each taken and held unacknowledged on ``channel`` (so
    the next take moves on past it) until acknowledged or the channel closes."""
    queue, waiting = await _queue(channel, queue_name)
    for _ in range(waiting):
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            return
        yield message


def _copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    return aio_pika.Message(
        message.body,
        headers={key: value for key, value in (message.headers or {}).items() if key not in _BROKER_HEADERS},
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        correlation_id=message.correlation_id,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


@asynccontextmanager
async def _channel(url: str) -> AsyncIterator[AbstractChannel]:
    """A connection with one confirming channel on which an unroutable publish raises; closed on leaving,
    a failed connect included (built, then connected, so the garbage collector is not left to close it)."""
    connection = aio_pika.Connection(make_url(url))
    try:
        await connection.connect(timeout=10)
        yield await connection.channel(publisher_confirms=True, on_return_raises=True)
    finally:
        await connection.close()


async def _queue(channel: AbstractChannel, name: str) -> tuple[AbstractQueue, int]:
    """The queue and the messages ready in it; NoSuchQueue when it does not exist."""
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        raise NoSuchQueue(f"no queue {name!r} on the broker") from None
    return queue, int(queue.declaration_result.message_count or 0)


def _table(letters: Sequence[DeadLetter]) -> list[str]:
    return [f"{d.occurred_at}  {d.event_type:<28} {d.event_id}  {d.reason}" for d in letters]


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.events.dead_letters", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("service", help="the service whose dead letters these are, e.g. payment-service")
    parser.add_argument("--event-id", action="append", help="replay only this event (repeatable)")
    args = parser.parse_args(argv)
    url = ServiceSettings().rabbitmq_url  # RABBITMQ_URL or RABBITMQ_URL_FILE, as the services read it
    try:
        if args.command == "list":
            letters = asyncio.run(look(url, args.service))
            print("\n".join([*_table(letters), f"{len(letters)} dead letter(s) in {args.service}.dead-letter"]))
        else:
            letters = asyncio.run(replay(url, args.service, set(args.event_id) if args.event_id else None))
            print("\n".join([*_table(letters), f"moved {len(letters)} dead letter(s) back to {args.service}"]))
    except NoSuchQueue as exc:
        print(f"{exc}: is {args.service!r} the name of a service that consumes events?")
        return 1
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        print(f"cannot reach the broker at {_without_password(url)}: {exc!r} (is the fleet running?)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
