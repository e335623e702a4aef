"""The event consumer with the inbox (DESIGN.md §5).

Each delivered event is recorded in ``inbox_events`` (a duplicate finds it there
and has no second effect) and applied by its handler in the same database
transaction; it is acknowledged only after the commit. A handler that fails is
rolled back and retried until the delivery limit, then dead-lettered, so one
poison event never blocks the queue and never disappears silently.

Deliveries that are waiting together are applied together: one worker takes
every delivery that has arrived (up to ``batch_size``, in delivery order) and
applies them in ONE transaction — one inbox insert, one commit, one outbox
NOTIFY for all of them — which is what lets a consumer keep up with a backlog
(docs/performance.md, the event-path benchmark). An idle consumer still applies
an event the moment it arrives, alone; a busy one (deliveries arrived while it
applied the last batch) may wait up to ``linger_seconds`` for a full batch.
When the handler of the k-th event of a batch fails, the transaction is rolled
back, the events before it are applied again without it, the failing one is
given back (one attempt used, one run of its handler) and the rest go on.
Handlers run one at a time, in delivery order, as with a prefetch of one. A
``BatchHandler`` (``shared.events.handlers``) gets a run of consecutive events
of its types in one call; when it fails, the events of the run are applied one
at a time to find the one at fault.

While a handler runs, ``shared.context.correlation_id`` is the event's and
``causation_id`` is its ``event_id``: events the handler adds to the outbox
carry the same correlation and point back at their cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert

from shared.db import Database, DriverStatement
from shared.events import EventHandler
from shared.events.bus import EventBus, IncomingEvent, Subscription, ack_together
from shared.events.envelope import Envelope
from shared.events.handlers import BatchHandler, handling
from shared.metrics import EVENTS_CONSUMED
from shared.tables import inbox_events

log = logging.getLogger(__name__)

# one row per event, sent as arrays and unnested; run on the driver's connection (every batch runs it)
_RECORD_IN_INBOX = DriverStatement(
    insert(inbox_events)
    .from_select(
        ["event_id", "event_type"],
        select(
            func.unnest(
                bindparam("event_ids", type_=ARRAY(inbox_events.c.event_id.type)),
                bindparam("event_types", type_=ARRAY(inbox_events.c.event_type.type)),
            )
            .table_valued("event_id", "event_type")
            .render_derived(name="new")
        ),
    )
    .on_conflict_do_nothing(index_elements=[inbox_events.c.event_id])
    .returning(inbox_events.c.event_id)
)


@dataclass(frozen=True, eq=False)
class _Delivery:
    message: IncomingEvent
    envelope: Envelope  # of a type this consumer handles


class _HandlerFailed(Exception):
    """The handler of ``deliveries[index : index + count]`` raised (count > 1: a batch handler's run, the
    event at fault unknown); the transaction was rolled back."""

    def __init__(self, index: int, error: Exception, count: int = 1) -> None:
        super().__init__(index, error, count)
        self.index = index
        self.error = error
        self.count = count


class EventConsumer:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        service: str,
        handlers: Mapping[str, EventHandler],
        batch_size: int = 1,
        linger_seconds: float = 0.0,
        retry_backoff: tuple[float, float] = (0.1, 2.0),
        database_retry_seconds: float = 1.0,
        stop_timeout: float = 10.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._db = db
        self._bus = bus
        self._service = service
        self._handlers = dict(handlers)
        self._batch_size = batch_size
        self._linger_seconds = linger_seconds
        # set by handle() when batch_size - 1 deliveries wait: with the one a lingering worker holds, a full
        # batch (the worker clears it before it lingers, so a setting from earlier counts for nothing)
        self._batch_ready = asyncio.Event()
        # a pause before giving a failed message back, so a brief hiccup does not burn every attempt at once
        self._retry_backoff_initial, self._retry_backoff_max = retry_backoff
        self._database_retry_seconds = database_retry_seconds
        self._stop_timeout = stop_timeout
        self._subscription: Subscription | None = None
        # deliveries waiting for the worker, each with the future its bus callback awaits
        self._waiting: asyncio.Queue[tuple[IncomingEvent, asyncio.Future[None]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Deliveries handed over by the bus and not yet settled."""
        return self._in_flight

    async def start(self) -> None:
        if self._handlers and self._subscription is None:
            self._stopping.clear()
            if self._worker is None:
                self._worker = asyncio.create_task(self._work(), name=f"event-consumer-{self._service}")
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
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        # what the worker never reached stays unsettled: the bus gives it back to the broker
        while not self._waiting.empty():
            _, settled = self._waiting.get_nowait()
            self._finished(settled)

    async def handle(self, message: IncomingEvent) -> None:
        """Apply one delivered message and settle it (the bus calls this, once per delivery)."""
        self._in_flight += 1
        self._idle.clear()
        if self._worker is None:  # not started: called directly, e.g. by a rebuild or a test
            try:
                await self._apply_deliveries([message])
            finally:
                self._finished(None)
            return
        settled = asyncio.get_running_loop().create_future()
        self._waiting.put_nowait((message, settled))
        if self._waiting.qsize() >= self._batch_size - 1:
            self._batch_ready.set()
        await settled

    def _finished(self, settled: asyncio.Future[None] | None) -> None:
        if settled is not None and not settled.done():
            settled.set_result(None)
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def _work(self) -> None:
        """Take what is waiting (at least one, at most a batch), apply it, settle it; forever."""
        under_load = False
        while True:
            batch = [await self._waiting.get()]
            if under_load:
                await self._linger_for_a_batch()
            while len(batch) < self._batch_size and not self._waiting.empty():
                batch.append(self._waiting.get_nowait())
            try:
                await self._apply_deliveries([message for message, _ in batch])
            except Exception:  # a bug here must not stop the consumer; the bus gives unsettled ones back
                log.exception("applying a batch of events failed unexpectedly")
            finally:
                for _, settled in batch:
                    self._finished(settled)
            under_load = not self._waiting.empty()  # deliveries arrived while this batch was applied

    async def _linger_for_a_batch(self) -> None:
        """Under load, wait up to the linger for a full batch before applying what is here: a run's fixed
        cost (its transaction, inbox and outbox statements, commit and ack) is then paid for several
        events instead of one or two, which on a busy machine frees CPU for the rest of the path
        (docs/performance.md, the event path). An idle consumer never waits: it applies a delivery the
        moment it arrives."""
        if not self._linger_seconds or self._waiting.qsize() >= self._batch_size - 1:
            return
        self._batch_ready.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._linger_seconds):
                await self._batch_ready.wait()

    # --- applying ---

    async def _apply_deliveries(self, messages: Sequence[IncomingEvent]) -> None:
        deliveries = [delivery for message in messages if (delivery := await self._triage(message)) is not None]
        if deliveries:
            await self._apply(deliveries)

    async def _triage(self, message: IncomingEvent) -> _Delivery | None:
        """The delivery to apply, or None when it was settled here (unparseable, or nobody handles it)."""
        try:
            envelope = Envelope.from_json(message.body)
        except ValueError as exc:
            # retrying cannot fix a malformed body: park it for a human
            log.error("unparseable event dead-lettered", extra={"routing_key": message.routing_key, "error": str(exc)})
            self._count(message.routing_key or "unknown", "dead_lettered")
            await message.dead_letter()
            return None
        if envelope.event_type not in self._handlers:
            # a binding left over from a removed handler: nothing to do here
            self._count(envelope.event_type, "ignored")
            await message.ack()
            return None
        return _Delivery(message, envelope)

    async def _apply(self, deliveries: Sequence[_Delivery]) -> None:
        """Apply ``deliveries`` in order, all in one transaction when every handler succeeds."""
        while deliveries:
            try:
                first_times = await self._apply_in_one_transaction([d.envelope for d in deliveries])
            except _HandlerFailed as failed:
                failing = deliveries[failed.index]
                if await self._held_for_database(failing, failed.error):
                    continue  # all of them again, now that it is back
                await self._apply(deliveries[: failed.index])  # those before it did not fail: they go on
                if failed.count > 1:  # one of a batch handler's run failed it: each alone, to find which
                    for delivery in deliveries[failed.index : failed.index + failed.count]:
                        await self._apply([delivery])
                    deliveries = deliveries[failed.index + failed.count :]
                    continue
                self._settled(failing, await self._give_back(failing, failed.error))
                deliveries = deliveries[failed.index + 1 :]
                continue
            except Exception as exc:
                # the inbox, a flush or the commit failed: no handler to blame
                if await self._held_for_database(deliveries[0], exc):
                    continue
                if len(deliveries) == 1:
                    self._settled(deliveries[0], await self._give_back(deliveries[0], exc))
                    return
                for delivery in deliveries:  # find the culprit, if there is one, one at a time
                    await self._apply([delivery])
                return
            # one ack for the batch where the broker allows it (each ack to a quorum queue is a write)
            await ack_together([delivery.message for delivery in deliveries])
            for delivery, first_time in zip(deliveries, first_times, strict=True):
                self._settled(delivery, "processed" if first_time else "duplicate")
            return

    async def _apply_in_one_transaction(self, envelopes: Sequence[Envelope]) -> list[bool]:
        """Record the events in the inbox and apply each new one, all in one transaction.

        Returns, per event, whether it was applied now (False: it was in the inbox already, or
        earlier in this batch). Raises ``_HandlerFailed`` when a handler fails; nothing is kept then.
        """
        async with self._db.transaction() as session:
            unique = {envelope.event_id: envelope.event_type for envelope in envelopes}
            recorded = await _RECORD_IN_INBOX.fetch(session, event_ids=list(unique), event_types=list(unique.values()))
            new = {row["event_id"] for row in recorded}
            first_times = []
            for envelope in envelopes:
                first_times.append(envelope.event_id in new)
                new.discard(envelope.event_id)  # a second copy in the same batch is a duplicate
            start = 0
            while start < len(envelopes):
                handler = self._handlers[envelopes[start].event_type]
                end = start + 1
                if isinstance(handler, BatchHandler):  # the run of events it takes, duplicates in it included
                    while end < len(envelopes) and self._handlers[envelopes[end].event_type] is handler:
                        end += 1
                run = [envelopes[i] for i in range(start, end) if first_times[i]]
                try:
                    if isinstance(handler, BatchHandler) and len(run) > 1:
                        await handler.apply_all(session, run)
                    elif run:
                        with handling(run[0]):
                            await handler(session, run[0])
                    if run and len(envelopes) > 1:
                        # the next handler reads what this one wrote, not ORM objects it left behind
                        await session.flush()
                        session.expire_all()
                except Exception as exc:
                    raise _HandlerFailed(start, exc, end - start) from exc
                start = end
            return first_times

    async def _held_for_database(self, delivery: _Delivery, error: Exception) -> bool:
        """When the database is away, wait for it (no attempt used up: not the event's fault) and say so."""
        if self._stopping.is_set() or await self._database_reachable():
            return False
        log.warning(
            "database unreachable while handling an event; holding it",
            extra={**_describe(delivery), "error": repr(error)},
        )
        await self._wait_for_database()
        return True

    async def _give_back(self, delivery: _Delivery, error: Exception) -> str:
        message = delivery.message
        log_extra = _describe(delivery)
        if message.final_attempt:
            log.error("event handler failed on its last attempt; dead-lettered", extra=log_extra, exc_info=error)
            await message.dead_letter()
            return "dead_lettered"
        log.error("event handler failed; will retry", extra=log_extra, exc_info=error)
        delay = min(self._retry_backoff_initial * 2 ** (message.attempt - 1), self._retry_backoff_max)
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            pass
        await message.retry()
        return "failed"

    def _settled(self, delivery: _Delivery, outcome: str) -> None:
        envelope = delivery.envelope
        with handling(envelope):
            # one line per consumed event, like an access log: `make logs CID=...` follows a request
            # from the gateway through every service its events reached
            log.info(
                "event consumed",
                extra={"event_type": envelope.event_type, "event_id": str(envelope.event_id), "outcome": outcome},
            )
        self._count(envelope.event_type, outcome)

    # --- the database being away ---

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


def _describe(delivery: _Delivery) -> dict[str, object]:
    envelope = delivery.envelope
    return {"event_type": envelope.event_type, "event_id": str(envelope.event_id), "attempt": delivery.message.attempt}
