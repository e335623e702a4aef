"""The outbox relay on its own thread: it publishes while the service's event loop is busy, through a
broker connection of its own, and stops cleanly (shared/events/relay_thread.py, decision 0022)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import REGISTRY

from shared.db import Database
from shared.events.bus import RabbitMQBus
from shared.events.relay_thread import ThreadedOutboxRelay
from shared.testing.events import EventRecorder, commit_user_updates, eventually, produced_by

pytest_plugins = ["tests.events_fixtures"]

NEVER_POLL = 60.0  # longer than any wait below: only a NOTIFY (or stop's flush) makes the relay publish
BLOCKING_WAIT_LIMIT = 30.0  # a bound on the blocked wait, so a broken relay fails the test instead of hanging it


def _published(service: str) -> float:
    return REGISTRY.get_sample_value("events_published_total", {"service": service, "event_type": "user.updated"}) or 0


def _relay_connected(service: str) -> float | None:
    return REGISTRY.get_sample_value("broker_connected", {"service": service, "role": "outbox-relay"})


def _block_this_thread_until(condition: Callable[[], bool]) -> bool:
    """Wait without yielding to the event loop: nothing else on this thread's loop runs meanwhile."""
    deadline = time.monotonic() + BLOCKING_WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _threaded_relay(db: Database, rabbit_url: str, exchange: str) -> ThreadedOutboxRelay:
    return ThreadedOutboxRelay(
        db,
        lambda: RabbitMQBus(
            rabbit_url, service=db.service, role="outbox-relay", exchange=exchange, reconnect_backoff=(0.05, 0.5)
        ),
        poll_seconds=NEVER_POLL,
    )


async def _backlog_is_zero(relay: ThreadedOutboxRelay) -> bool:
    return await relay.backlog() == 0


def _relay_threads(service: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"outbox-relay-{service}"]


async def test_the_relay_publishes_while_the_services_event_loop_is_blocked(
    db: Database, rabbit_url: str, exchange: str, recorder: EventRecorder
) -> None:
    relay = _threaded_relay(db, rabbit_url, exchange)
    await relay.start()
    try:
        await eventually(lambda: _relay_connected(db.service) == 1, what="the relay's own broker connection")
        written = await commit_user_updates(db, 3)  # the commit hands them over to the relay's thread

        # this loop runs nothing until the broker has confirmed all three: a relay on it could not
        assert _block_this_thread_until(lambda: _published(db.service) >= 3)

        received = await recorder.wait_for_count("user.updated", 3, produced_by(db))
        assert received == written  # each once, in the order added
        await eventually(lambda: _backlog_is_zero(relay), what="the rows marked published")  # behind the publish
        assert len(_relay_threads(db.service)) == 1
    finally:
        await relay.stop()
    assert _relay_threads(db.service) == []  # the thread is gone, its connection closed
    assert _relay_connected(db.service) == 0


async def test_stop_publishes_what_is_already_committed_then_ends_the_thread(
    db: Database, rabbit_url: str, exchange: str, recorder: EventRecorder
) -> None:
    relay = _threaded_relay(db, rabbit_url, exchange)
    await relay.start()
    # committed with the relay's listener perhaps not yet listening and polling far away: only stop's
    # flush is sure to publish them
    written = await commit_user_updates(db, 5)
    await relay.stop()

    received = await recorder.wait_for_count("user.updated", 5, produced_by(db))
    assert {e.event_id for e in received} == {e.event_id for e in written}
    assert await relay.backlog() == 0
    assert _relay_threads(db.service) == []
