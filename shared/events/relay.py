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

A started relay also takes the events its own process commits straight from
the commit (``Database.outbox_handoff``; decision 0024): their rows are written
claimed by it for ``lease``, with no NOTIFY; it publishes them at once (confirms
awaited together) and marks them published behind the publishing, every
``mark_delay_seconds`` one statement for all rows confirmed meanwhile: no
claiming pass, no wake-up through PostgreSQL. A row the broker refused is
released (``claimed_until`` cleared, ``attempts`` and ``last_error`` updated)
for the passes to retry after the back-off; a row the process never got to
publish (it died) is any pass's once the lease has run out. A row published but
not marked (the database went away in between) is published again then, and the
consumers' inbox absorbs the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import DateTime, Integer, Text, any_, bindparam, func, null, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from shared.db import Database, DriverStatement, asyncpg_dsn
from shared.events.bus import EventBus, PublishError
from shared.events.envelope import Envelope
from shared.events.outbox import NOTIFY_CHANNEL, OutboxHandoff
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
# Rows another process's relay has claimed (handed over by its commits) are left to it until the claim
# runs out.
_IDS = bindparam("ids", type_=ARRAY(outbox_events.c.id.type))
_CLAIM = DriverStatement(
    update(outbox_events)
    .where(
        outbox_events.c.id.in_(
            select(outbox_events.c.id)
            .where(
                outbox_events.c.published_at.is_(None),
                or_(outbox_events.c.claimed_until.is_(None), outbox_events.c.claimed_until < func.now()),
            )
            .order_by(outbox_events.c.created_at)
            .limit(bindparam("batch_size", type_=Integer()))
            .with_for_update(skip_locked=True)
        )
    )
    .values(published_at=func.now(), last_error=null(), claimed_until=null())
    .returning(outbox_events.c.id, outbox_events.c.event_type, outbox_events.c.envelope, outbox_events.c.created_at)
)
_MARK_FAILED = DriverStatement(
    update(outbox_events)
    .where(outbox_events.c.id == any_(_IDS))
    .values(
        published_at=null(),
        claimed_until=null(),
        attempts=outbox_events.c.attempts + 1,
        last_error=bindparam("error", type_=Text()),
    )
)
# handed-over rows the broker confirmed, each with when its publishing began (as a pass's ``published_at``)
_CONFIRMED = (
    func.unnest(_IDS, bindparam("published_at", type_=ARRAY(DateTime(timezone=True))))
    .table_valued("id", "published_at")
    .render_derived(name="confirmed")
)
_MARK_PUBLISHED = DriverStatement(
    update(outbox_events)
    .where(outbox_events.c.id == _CONFIRMED.c.id)
    .values(published_at=_CONFIRMED.c.published_at, claimed_until=null(), last_error=null())
)

HANDOFF_LEASE = timedelta(seconds=30)  # far beyond a publish's timeout: a live relay is never overtaken
MAX_HANDED_OVER = 10_000  # envelopes waiting in memory; beyond, their rows wait out the lease for a pass
# how long confirmed rows wait to be marked together: at 100 events/s one statement (and one commit) for
# about five instead of one each; far below the lease, and nobody waits for the mark
MARK_DELAY_SECONDS = 0.05


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
        lease: timedelta = HANDOFF_LEASE,
        mark_delay_seconds: float = MARK_DELAY_SECONDS,
        # False: whoever runs it hands the commits over (ThreadedOutboxRelay, from another thread)
        takes_handoffs: bool = True,
    ) -> None:
        self._db = db
        self._bus = bus
        self._service = db.service
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._retry_backoff_initial, self._retry_backoff_max = retry_backoff
        self._stop_timeout = stop_timeout
        self._lease = lease
        self._mark_delay_seconds = mark_delay_seconds
        self._takes_handoffs = takes_handoffs
        self._handed_over: deque[Envelope] = deque()
        self._refused = 0  # events refused since the hand-over was last full, left to the passes
        self._unmarked: dict[uuid.UUID, datetime] = {}  # published hand-overs → when their publishing began
        self._marking: asyncio.Task[None] | None = None
        self._pass_due = True  # a pass over the outbox table: at the start, on a NOTIFY, at the poll
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._listener_task: asyncio.Task[None] | None = None

    # --- public interface ---

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping.clear()
        self._pass_due = True
        self._loop_task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")
        self._listener_task = asyncio.create_task(self._listen(), name=f"outbox-listener-{self._service}")
        if self._takes_handoffs:  # this process's commits reach the relay on its own loop
            self._db.outbox_handoff = OutboxHandoff(self.take, self._lease)

    def take(self, envelopes: Sequence[Envelope]) -> None:
        """Envelopes a transaction committed, their rows claimed for this relay: published on its next turn
        (call on the relay's loop)."""
        if len(self._handed_over) + len(envelopes) > MAX_HANDED_OVER:
            if not self._refused:  # once per spell, not once per commit: the log is not flooded
                log.warning("outbox hand-over full; the rows of further commits wait for their lease to run out")
            self._refused += len(envelopes)
            return
        if self._refused:
            log.warning("outbox hand-over has room again", extra={"refused": self._refused})
            self._refused = 0
        self._handed_over.extend(envelopes)
        self._wake.set()

    async def stop(self) -> None:
        """Stop the loop after its current pass, then publish what is already committed (bounded)."""
        if self._db.outbox_handoff is not None and self._db.outbox_handoff.receive == self.take:
            self._db.outbox_handoff = None  # commits from now on notify, for whichever relay runs next
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
        """What was handed over, then one pass: publish pending rows until none is left or a publish fails;
        returns how many."""
        handed_over = await self._publish_handed_over()
        await self._all_marked()
        if handed_over.failed:
            return handed_over.published
        return handed_over.published + (await self._drain()).published

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
        async with self._connection() as connection:
            return await self._publish_batch_on(connection)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's driver connection, dropped from the pool when it turns out to be lost."""
        async with self._db.engine.connect() as pooled:
            try:
                yield (await pooled.get_raw_connection()).driver_connection
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
                # the pool cannot see what happened on the driver's connection: drop it, a new one follows
                await pooled.invalidate()
                raise

    async def _publish_handed_over(self) -> _PassResult:
        """Publish what this process's commits handed over, a batch at a time, each batch's confirms awaited
        together; the confirmed rows are marked behind it (``_mark_later``); stop at a batch the broker
        failed, its failed rows released for the passes."""
        total = _PassResult(published=0, claimed=0, failed=False)
        while self._handed_over and not total.failed:
            envelopes = [self._handed_over.popleft() for _ in range(min(self._batch_size, len(self._handed_over)))]
            began = datetime.now(UTC)
            outcomes = await self._bus.publish_many(envelopes)
            published = [e for e, outcome in zip(envelopes, outcomes, strict=True) if outcome is None]
            failures = [(e, o) for e, o in zip(envelopes, outcomes, strict=True) if o is not None]
            self._mark_later([e.event_id for e in published], began)
            for envelope in published:
                EVENTS_PUBLISHED.labels(self._service, envelope.event_type).inc()
            total.published += len(published)
            total.claimed += len(envelopes)
            if failures:
                first, error = failures[0]
                log.warning(
                    "publishing outbox events failed; will retry",
                    extra={"count": len(failures), "event_type": first.event_type, "error": repr(error)},
                )
                async with self._connection() as connection:  # the passes retry them after the back-off
                    await _mark_failed(connection, [e.event_id for e, _ in failures], error)
                total.failed = True
        return total

    def _mark_later(self, ids: Sequence[uuid.UUID], began: datetime) -> None:
        """Mark ``ids`` published without holding up the next publish: after ``mark_delay_seconds``, in one
        statement with every row confirmed meanwhile (a round trip and a commit for each row would cost
        PostgreSQL and this thread more than the publish itself)."""
        if not ids:
            return
        self._unmarked.update(dict.fromkeys(ids, began))
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_published(), name=f"outbox-marker-{self._service}")

    async def _mark_published(self) -> None:
        while self._unmarked:
            if not self._stopping.is_set():
                await asyncio.sleep(self._mark_delay_seconds)
            confirmed, self._unmarked = self._unmarked, {}
            try:
                async with self._connection() as connection:
                    await connection.execute(
                        _MARK_PUBLISHED.sql,
                        *_MARK_PUBLISHED.arguments({"ids": list(confirmed), "published_at": list(confirmed.values())}),
                    )
            except Exception as exc:  # published all the same: a pass publishes them again once the claim runs out
                log.warning(
                    "marking published outbox rows failed; they are published again when their claim runs out",
                    extra={"count": len(confirmed), "error": repr(exc)},
                )

    async def _all_marked(self) -> None:
        """Wait for the marks on their way (they never raise)."""
        while self._marking is not None and not self._marking.done():
            await asyncio.shield(self._marking)

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
            # written together, their confirms awaited together: one round trip for the batch
            outcomes = await self._bus.publish_many([envelope for _, envelope in sendable])
            published = 0
            broker_failures: list[tuple[asyncpg.Record, PublishError]] = []
            for (row, _), outcome in zip(sendable, outcomes, strict=True):
                if outcome is not None:
                    broker_failures.append((row, outcome))
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
            self._wake.clear()  # a hand-over or a notification arriving meanwhile triggers another turn
            try:
                failed = (await self._publish_handed_over()).failed
                if not failed and self._pass_due:
                    self._pass_due = False
                    failed = (await self._drain()).failed
            except Exception:
                log.exception("outbox relay pass failed")  # e.g. the database is away
                failed = True
            if failed:
                self._pass_due = True  # what failed waits in the outbox table for a pass
                await self._pause_after_failure(delay)
                delay = min(delay * 2, self._retry_backoff_max)
                continue
            delay = self._retry_backoff_initial
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
            except TimeoutError:
                self._pass_due = True

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
                self._on_notify()  # rows may have been committed while nobody listened
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
        self._pass_due = True
        self._wake.set()
