"""The outbox relay on a thread of its own, with its own event loop, database pool and broker connection.

On the request loop, a relay pass waits for a turn of the loop at each step of each publish, behind
every request in flight: under 100 completions/s on two busy cores, passes that take ~0.1 s idle took
0.6–4.4 s, and lesson-service's outbox grew by ~1,400 rows in 30 s while the consumers sat idle
(docs/performance.md, the event path; decision 0022). A thread is scheduled by the operating system
and gets the interpreter at least every switch interval (5 ms), whatever the request loop is doing.

Only the relay moves: requests, the consumer and the housekeeping stay on the service's loop. The
thread's relay is the same :class:`~shared.events.relay.OutboxRelay`; this class starts it there, hands
calls over and stops it, so the app's lifespan, the metrics and the tests use it as they would the
relay itself. The events the service's transactions commit are handed to it across the threads
(``Database.outbox_handoff``, decision 0024).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from shared.db import Database
from shared.events.bus import EventBus
from shared.events.envelope import Envelope
from shared.events.outbox import OutboxHandoff
from shared.events.relay import HANDOFF_LEASE, OutboxRelay, count_backlog

T = TypeVar("T")

# a pass, or a mark of handed-over rows, holds one connection while it runs; none of them waits for
# another while holding it, so they take turns (stop lets a pass finish before its flush)
RELAY_POOL_SIZE = 1


class LoopThread:
    """A daemon thread running an event loop of the same kind as its creator's (uvloop under uvicorn)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        loop = type(asyncio.get_running_loop())()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            try:
                loop.run_forever()
            finally:
                _finish(loop)

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        started.wait()

    @property
    def running(self) -> bool:
        return self._loop is not None

    async def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``function(*args)`` on the thread's loop and await its result from the caller's loop."""
        if self._loop is None:
            raise RuntimeError(f"{self._name} is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(function(*args), self._loop))

    def call_soon(self, function: Callable[..., object], *args: Any) -> None:
        """Run ``function(*args)`` on the thread's loop soon, from any thread; nothing once it has stopped."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(function, *args)

    async def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does after its main coroutine: cancel what is left (a library's background
    tasks), let it unwind, then close the loop."""
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class ThreadedOutboxRelay:
    """An :class:`OutboxRelay` publishing from its own thread, through ``make_bus()``'s connection and a
    small pool of its own on ``db``'s database. ``backlog`` reads through ``db`` (the caller's pool)."""

    def __init__(
        self,
        db: Database,
        make_bus: Callable[[], EventBus],
        *,
        poll_seconds: float,
        lease: timedelta = HANDOFF_LEASE,
    ) -> None:
        self._db = db
        self._make_bus = make_bus
        self._poll_seconds = poll_seconds
        self._lease = lease
        self._thread = LoopThread(f"outbox-relay-{db.service}")
        # built on the thread, in its loop
        self._relay: OutboxRelay | None = None
        self._relay_db: Database | None = None
        self._bus: EventBus | None = None

    async def start(self) -> None:
        if self._thread.running:
            return
        self._thread.start()
        await self._thread.call(self._start_on_thread)
        self._db.outbox_handoff = OutboxHandoff(self._hand_over, self._lease)

    def _hand_over(self, envelopes: Sequence[Envelope]) -> None:
        """From the committing thread to the relay's; once it has stopped, the rows wait out their lease."""
        relay = self._relay
        if relay is not None:
            self._thread.call_soon(relay.take, envelopes)

    async def stop(self) -> None:
        """The relay's own stop (its pass finished, then one last flush), then its connections and thread."""
        if self._db.outbox_handoff is not None and self._db.outbox_handoff.receive == self._hand_over:
            self._db.outbox_handoff = None  # commits from now on notify, for whichever relay runs next
        if self._thread.running:
            await self._thread.call(self._stop_on_thread)
        await self._thread.stop()

    async def publish_pending(self) -> int:
        return await self._thread.call(self._running().publish_pending)

    async def backlog(self) -> int:
        return await count_backlog(self._db)

    def _running(self) -> OutboxRelay:
        if self._relay is None:
            raise RuntimeError("the outbox relay is not running")
        return self._relay

    async def _start_on_thread(self) -> None:
        self._relay_db = Database(self._db.url, service=self._db.service, pool_size=RELAY_POOL_SIZE, max_overflow=0)
        self._bus = self._make_bus()
        await self._bus.start()
        self._relay = OutboxRelay(
            self._relay_db, self._bus, poll_seconds=self._poll_seconds, lease=self._lease, takes_handoffs=False
        )
        await self._relay.start()

    async def _stop_on_thread(self) -> None:
        relay, bus, db = self._relay, self._bus, self._relay_db
        self._relay = self._bus = self._relay_db = None
        try:
            if relay is not None:
                await relay.stop()
        finally:
            if bus is not None:
                await bus.close()
            if db is not None:
                await db.dispose()
