"""Several events handed to the broker in one write on a publisher-confirms channel (decision 0025).

aiormq's ``basic_publish`` takes the channel's lock, queues the message's frames for the connection's
writer task and waits for them to be written, one message at a time: about 250 µs of CPU per message
here even when fifty are sent at once, most of it that hand-off, against about 70 µs per message when a
batch's frames go out as one (docs/performance.md, "A batch of events in one write").
:func:`send_together` does for a batch what ``basic_publish`` does for one message, with the same
members of aiormq's channel:

- ``lock`` (held while delivery tags are taken and the frames queued, as ``basic_publish`` holds it),
- ``delivery_tag`` (the broker numbers the messages of a confirm-mode channel 1, 2, ...; aiormq counts
  along and so do we, under the lock),
- ``confirmations`` (delivery tag → future; aiormq's reader settles it from the broker's ack or nack,
  ``multiple`` included) and ``create_future`` (a future the channel fails when it closes),
- ``write_queue`` with ``aiormq.abc.ChannelFrame`` (what the connection's writer sends, and its drain
  future), ``number`` and ``_split_body`` (a body longer than the negotiated frame size).

``tests/test_events_frames.py`` holds each to its meaning against the real broker, so an aiormq
upgrade that changes one fails there rather than in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiormq
from aiormq.abc import ChannelFrame
from pamqp.header import ContentHeader

from shared.events.envelope import Envelope

PERSISTENT = 2  # AMQP delivery mode: the broker writes the message to disk before it confirms


def properties(envelope: Envelope) -> aiormq.spec.Basic.Properties:
    """What aio-pika's ``Message`` would carry for this event: its identity, for operators and the
    dead-letter tools, beside the body that holds it all."""
    return aiormq.spec.Basic.Properties(
        content_type="application/json",
        delivery_mode=PERSISTENT,
        message_id=str(envelope.event_id),
        message_type=envelope.event_type,
        correlation_id=envelope.correlation_id,
        app_id=envelope.producer,
        timestamp=envelope.occurred_at,
        headers={"version": envelope.version},
    )


async def send_together(
    channel: aiormq.Channel, exchange: str, envelopes: Sequence[Envelope]
) -> list[asyncio.Future[object]]:
    """Queue ``envelopes`` in order as one write and wait until it is written; each one's confirmation
    (an ack resolves it, a nack fails it with ``DeliveryError``, a closing channel fails it too).
    Not mandatory: an event nobody subscribes to yet is still published."""
    frames: list[object] = []
    confirmations: list[asyncio.Future[object]] = []
    async with channel.lock:
        first_tag = channel.delivery_tag
        for envelope in envelopes:
            body = envelope.to_json()
            channel.delivery_tag += 1
            confirmation = channel.create_future()
            channel.confirmations[channel.delivery_tag] = confirmation
            confirmations.append(confirmation)
            frames += [
                aiormq.spec.Basic.Publish(exchange=exchange, routing_key=envelope.event_type, mandatory=False),
                ContentHeader(properties=properties(envelope), body_size=len(body)),
                *channel._split_body(body),
            ]
        written = channel.create_future()
        queued = False
        try:
            await channel.write_queue.put(
                ChannelFrame.marshall(channel_number=channel.number, frames=frames, drain_future=written)
            )
            queued = True
            await written
        except BaseException:
            if not queued:  # the broker never saw them: give their delivery tags back, as basic_publish does
                for tag in range(first_tag + 1, channel.delivery_tag + 1):
                    channel.confirmations.pop(tag, None)
                channel.delivery_tag = first_tag
                for confirmation in confirmations:
                    confirmation.cancel()
            written.cancel()
            raise
    return confirmations
