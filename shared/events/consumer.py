"""The event consumer with the inbox (DESIGN.md §5).

For each delivered message, in ONE database transaction: record the event's id
in ``inbox_events`` (a duplicate finds it there and has no second effect) and
run the handler; commit; only then acknowledge. A handler that fails is rolled
back and retried until the delivery limit, then dead-lettered, so one poison
event never blocks the queue and never disappears silently.

While a handler runs, ``shared.context.correlation_id`` is the event's and
``causation_id`` is its ``event_id``: events the handler adds to the outbox
carry the same correlation and point back at their cause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from sqlalchemy.dialects.postgresql import insert

from shared import context
from shared.db import Database
from shared.events import EventHandler
from shared.events.bus import EventBus, IncomingEvent, Subscription
from shared.events.envelope import Envelope
from shared.metrics import EVENTS_CONSUMED
from shared.tables import inbox_events

log = logging.getLogger(__name__)


class EventConsumer:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        service: str,
        handlers: Mapping[str, EventHandler],
        retry_backoff: tuple[float, float] = (0.1, 2.0),
        database_retry_seconds: float = 1.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._service = service
        self._handlers = dict(handlers)
        # a pause before giving a failed message back, so a brief hiccup does not burn every attempt at once
        self._retry_backoff_initial, self._retry_backoff_max = retry_backoff
        self._database_retry_seconds = database_retry_seconds
        self._stop_timeout = stop_timeout
        self._subscription: Subscription | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        if self._handlers and self._subscription is None:
            self._stopping.clear()
            self._subscription = await self._bus.consume(self._service, self._handlers, self.handle)

    async def stop(self) -> None:
        """Take no new messages and let those being handled finish (bounded)."""
        self._stopping.set()
        if self._subscription is not None:
            await self._subscription.cancel()
            self._subscription = None
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=self._stop_timeout)
        except TimeoutError:
            log.warning("stopped with events still being handled", extra={"count": self._in_flight})

    async def handle(self, message: IncomingEvent) -> None:
        """Apply one delivered message and settle it (the bus calls this)."""
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._handle(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(self, message: IncomingEvent) -> None:
        try:
            envelope = Envelope.from_json(message.body)
        except ValueError as exc:
            # retrying cannot fix a malformed body: park it for a human
            log.error("unparseable event dead-lettered", extra={"routing_key": message.routing_key, "error": str(exc)})
            self._count(message.routing_key or "unknown", "dead_lettered")
            await message.dead_letter()
            return

        handler = self._handlers.get(envelope.event_type)
        if handler is None:
            # a binding left over from a removed handler: nothing to do here
            self._count(envelope.event_type, "ignored")
            await message.ack()
            return

        correlation_token = context.correlation_id.set(envelope.correlation_id)
        causation_token = context.causation_id.set(str(envelope.event_id))
        try:
            outcome = await self._apply(envelope, handler, message)
            # one line per consumed event, like an access log: `make logs CID=...` follows a request
            # from the gateway through every service its events reached
            log.info(
                "event consumed",
                extra={"event_type": envelope.event_type, "event_id": str(envelope.event_id), "outcome": outcome},
            )
        finally:
            context.causation_id.reset(causation_token)
            context.correlation_id.reset(correlation_token)
        self._count(envelope.event_type, outcome)

    async def _apply(self, envelope: Envelope, handler: EventHandler, message: IncomingEvent) -> str:
        log_extra = {"event_type": envelope.event_type, "event_id": str(envelope.event_id), "attempt": message.attempt}
        while True:
            try:
                first_time = await self._run_in_transaction(envelope, handler)
            except Exception as exc:
                if not await self._database_reachable() and not self._stopping.is_set():
                    # not the event's fault: hold it (no attempt used up) until the database is back
                    log.warning(
                        "database unreachable while handling an event; holding it",
                        extra={**log_extra, "error": repr(exc)},
                    )
                    await self._wait_for_database()
                    continue
                return await self._give_back(message, log_extra)
            await message.ack()
            return "processed" if first_time else "duplicate"

    async def _run_in_transaction(self, envelope: Envelope, handler: EventHandler) -> bool:
        """Record the event in the inbox and apply it, together; False if it was already there."""
        async with self._db.transaction() as session:
            recorded = await session.execute(
                insert(inbox_events)
                .values(event_id=envelope.event_id, event_type=envelope.event_type)
                .on_conflict_do_nothing(index_elements=[inbox_events.c.event_id])
                .returning(inbox_events.c.event_id)
            )
            if recorded.first() is None:
                return False  # handled before: a redelivery or a duplicate publish
            await handler(session, envelope)
            return True

    async def _give_back(self, message: IncomingEvent, log_extra: dict[str, object]) -> str:
        if message.final_attempt:
            log.exception("event handler failed on its last attempt; dead-lettered", extra=log_extra)
            await message.dead_letter()
            return "dead_lettered"
        log.exception("event handler failed; will retry", extra=log_extra)
        delay = min(self._retry_backoff_initial * 2 ** (message.attempt - 1), self._retry_backoff_max)
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            pass
        await message.retry()
        return "failed"

    async def _database_reachable(self) -> bool:
        try:
            await asyncio.wait_for(self._db.ping(), timeout=5)
        except Exception:
            return False
        return True

    async def _wait_for_database(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self._database_retry_seconds)
            except TimeoutError:
                pass
            if await self._database_reachable():
                return

    def _count(self, event_type: str, outcome: str) -> None:
        EVENTS_CONSUMED.labels(self._service, event_type, outcome).inc()
