"""The outbox relay: publishes committed outbox rows to the bus (DESIGN.md §5).

A pass claims the oldest pending rows with ``FOR UPDATE SKIP LOCKED`` (so
replicas never publish the same row at the same time) and marks them
``published_at`` in the same statement, publishes them in ``created_at`` order
on one channel with their broker confirmations awaited together, and commits.
A failed publish sets its row pending again, with ``attempts`` and
``last_error`` updated, before the commit, and the relay backs off; a pass
that fails before its commit leaves every row it claimed pending. Delivery
is at least once:
if the commit after a publish fails, the row is published again and the
consumers' inbox absorbs the duplicate. Order is kept while the broker
confirms; a row whose publish failed is published again after the ones
confirmed behind it; consumers already meet events out of order after a
retry or a redelivery.

The relay wakes on ``LISTEN outbox_events`` (``add_event`` notifies on commit)
on its own asyncpg connection, reconnected when the database drops it, and
polls every ``poll_seconds`` in case a notification is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy import Integer, Text, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from shared.db import Database, DriverStatement, asyncpg_dsn
from shared.events.bus import EventBus, PublishError
from shared.events.envelope import Envelope
from shared.events.outbox import NOTIFY_CHANNEL
from shared.metrics import EVENTS_PUBLISHED
from shared.tables import outbox_events

log = logging.getLogger(__name__)


@dataclass
class _PassResult:
    published: int
    claimed: int
    failed: bool


# A pass's two statements, built with Core (the table's names stay in shared/tables.py) and sent on the
# driver's connection (shared.db.DriverStatement's SQL): a pass carries one or two rows at 100 events/s,
# and building the session, transaction and result around them in SQLAlchemy cost as much CPU as the
# statements and the publish together (0.5 of ~1.5 ms per one-row pass; docs/performance.md).
#
# The oldest pending rows no other relay holds, marked published in the same statement (one round trip
# for both) and locked until the pass commits: a pass that fails before its commit leaves them pending;
# a row the broker refused is set pending again (_MARK_FAILED) before the commit.
_CLAIM = DriverStatement(
    update(outbox_events)
    .where(
        outbox_events.c.id.in_(
            select(outbox_events.c.id)
            .where(outbox_events.c.published_at.is_(None))
            .order_by(outbox_events.c.created_at)
            .limit(bindparam("batch_size", type_=Integer()))
            .with_for_update(skip_locked=True)
        )
    )
    .values(published_at=func.now(), last_error=None)
    .returning(outbox_events.c.id, outbox_events.c.event_type, outbox_events.c.envelope, outbox_events.c.created_at)
)
_MARK_FAILED = DriverStatement(
    update(outbox_events)
    .where(outbox_events.c.id == any_(bindparam("ids", type_=ARRAY(outbox_events.c.id.type))))
    .values(published_at=None, attempts=outbox_events.c.attempts + 1, last_error=bindparam("error", type_=Text()))
)


async def _mark_failed(connection: asyncpg.Connection, ids: list[uuid.UUID], error: Exception) -> None:
    await connection.execute(_MARK_FAILED.sql, *_MARK_FAILED.arguments({"ids": ids, "error": repr(error)[:2000]}))


async def count_backlog(db: Database) -> int:
    """Outbox rows not yet published."""
    async with db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(outbox_events).where(outbox_events.c.published_at.is_(None))
        )
    return int(count or 0)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        poll_seconds: float = 5.0,
        # a pass lasts a few turns of the event loop whatever its size, and a turn is long while the
        # service is busy with requests: 100 rows a pass let a busy lesson-service's outbox grow by
        # 1,600 rows in 30 s at 100 completions/s (docs/performance.md, the event path)
        batch_size: int = 1000,
        retry_backoff: tuple[float, float] = (0.2, 10.0),
        stop_timeout: float = 10.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._service = db.service
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._retry_backoff_initial, self._retry_backoff_max = retry_backoff
        self._stop_timeout = stop_timeout
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._listener_task: asyncio.Task[None] | None = None

    # --- public interface ---

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")
        self._listener_task = asyncio.create_task(self._listen(), name=f"outbox-listener-{self._service}")

    async def stop(self) -> None:
        """Stop the loop after its current pass, then publish what is already committed (bounded)."""
        self._stopping.set()
        self._wake.set()
        listener, self._listener_task = self._listener_task, None
        if listener is not None:
            listener.cancel()  # it only wakes the loop; nothing to finish
            await asyncio.gather(listener, return_exceptions=True)
        loop_task, self._loop_task = self._loop_task, None
        if loop_task is not None:
            # let a pass in progress finish, so its published rows get marked
            _, still_running = await asyncio.wait({loop_task}, timeout=self._stop_timeout)
            if still_running:
                loop_task.cancel()
            await asyncio.gather(loop_task, return_exceptions=True)
        try:
            async with asyncio.timeout(self._stop_timeout):
                published = await self.publish_pending()
        except Exception as exc:  # shutting down: the rows stay in the outbox for the next start
            log.warning("outbox not flushed on stop", extra={"error": repr(exc)})
        else:
            if published:
                log.info("outbox flushed on stop", extra={"published": published})

    async def publish_pending(self) -> int:
        """One pass: publish pending rows until none is left or a publish fails; returns how many."""
        return (await self._drain()).published

    async def backlog(self) -> int:
        """Rows not yet published."""
        return await count_backlog(self._db)

    # --- one pass ---

    async def _drain(self) -> _PassResult:
        """Publish batch after batch until one is not full or a publish fails."""
        total = _PassResult(published=0, claimed=0, failed=False)
        while True:
            batch = await self._publish_batch()
            total.published += batch.published
            total.claimed += batch.claimed
            total.failed = batch.failed
            if batch.failed or batch.claimed < self._batch_size:
                return total

    async def _publish_batch(self) -> _PassResult:
        async with self._db.engine.connect() as pooled:
            connection: asyncpg.Connection = (await pooled.get_raw_connection()).driver_connection
            try:
                return await self._publish_batch_on(connection)
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
                # the pool cannot see what happened on the driver's connection: drop it, a new one follows
                await pooled.invalidate()
                raise

    async def _publish_batch_on(self, connection: asyncpg.Connection) -> _PassResult:
        async with connection.transaction():
            # RETURNING keeps no order: the rows go out in the order they were added
            claimed = await connection.fetch(_CLAIM.sql, *_CLAIM.arguments({"batch_size": self._batch_size}))
            rows = sorted(claimed, key=lambda row: row["created_at"])
            sendable: list[tuple[asyncpg.Record, Envelope]] = []
            unsendable: list[tuple[asyncpg.Record, Exception]] = []
            for row in rows:
                try:
                    # the pool's connections decode JSONB to Python objects (SQLAlchemy sets the codec)
                    sendable.append((row, Envelope.model_validate(row["envelope"])))
                except ValueError as exc:
                    # a row that can never be published must not hold up the rest
                    log.error("outbox row is not a valid envelope", extra={"event_id": str(row["id"])})
                    unsendable.append((row, exc))
            # sent one after another on the channel, their confirms awaited together: one round trip
            # for the batch instead of one per event
            outcomes = await asyncio.gather(
                *(self._bus.publish(envelope) for _, envelope in sendable), return_exceptions=True
            )
            published = 0
            broker_failures: list[tuple[asyncpg.Record, PublishError]] = []
            for (row, _), outcome in zip(sendable, outcomes, strict=True):
                if isinstance(outcome, PublishError):
                    broker_failures.append((row, outcome))
                elif isinstance(outcome, BaseException):
                    raise outcome  # not the broker's answer: roll back; the rows are published again later
                else:
                    published += 1
                    EVENTS_PUBLISHED.labels(self._service, row["event_type"]).inc()
            for row, exc in unsendable:
                await _mark_failed(connection, [row["id"]], exc)
            if broker_failures:
                # the broker is the problem, not these rows: they stay pending and are retried after a pause
                first, exc = broker_failures[0]
                log.warning(
                    "publishing outbox events failed; will retry",
                    extra={"count": len(broker_failures), "event_type": first["event_type"], "error": repr(exc)},
                )
                await _mark_failed(connection, [row["id"] for row, _ in broker_failures], exc)
        return _PassResult(published=published, claimed=len(rows), failed=bool(broker_failures))

    # --- the loop ---

    async def _run(self) -> None:
        delay = self._retry_backoff_initial
        while not self._stopping.is_set():
            self._wake.clear()  # a notification arriving during the pass triggers another one
            try:
                failed = (await self._drain()).failed
            except Exception:
                log.exception("outbox relay pass failed")  # e.g. the database is away
                failed = True
            if failed:
                await self._pause_after_failure(delay)
                delay = min(delay * 2, self._retry_backoff_max)
                continue
            delay = self._retry_backoff_initial
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)

    async def _pause_after_failure(self, delay: float) -> None:
        """Back off, ignoring outbox notifications, but resume as soon as a lost broker is back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        broker_was_down = not self._bus.is_connected
        while not self._stopping.is_set() and (remaining := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=min(remaining, 0.05))
            if broker_was_down and self._bus.is_connected:
                return

    async def _listen(self) -> None:
        """Keep a LISTEN connection open; reconnect when it drops. Polling covers the gaps."""
        delay = self._retry_backoff_initial
        while not self._stopping.is_set():
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    asyncpg_dsn(self._db.url),
                    timeout=5,
                    server_settings={"application_name": f"{self._service}-outbox-listener"},
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self._wake.set()  # rows may have been committed while nobody listened
                delay = self._retry_backoff_initial
                await self._watch(connection, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox LISTEN connection failed; polling meanwhile", extra={"error": repr(exc)})
            finally:
                if connection is not None:
                    connection.terminate()
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, self._retry_backoff_max)

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is lost or the relay stops; probe it to notice a silent drop."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=self._poll_seconds)
            if lost.is_set():
                raise ConnectionError("LISTEN connection closed")
            await connection.execute("SELECT 1", timeout=5)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()
