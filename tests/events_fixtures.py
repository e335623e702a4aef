"""Fixtures for the event tests (loaded with ``pytest_plugins`` from the test modules).

Each test gets its own service name and exchange on the session's vhost, so
tests never see each other's events, and a ``TcpProxy`` in front of RabbitMQ
for fault injection.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from shared.db import Database
from shared.events.bus import InMemoryBus, RabbitMQBus
from shared.tables import outbox_events
from shared.testing import infra
from shared.testing.events import CONSUMER_BATCH_SIZE, EventRecorder, eventually, wait_for_dead_letters
from shared.testing.tcp_proxy import TcpProxy

FAST_RECONNECT = (0.05, 0.5)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def service(unique: str) -> str:
    return f"test-svc-{unique}"


@pytest.fixture
def exchange(unique: str) -> str:
    return f"test.events.{unique}"


@pytest.fixture(scope="session")
async def events_db_url(test_run_id: str) -> AsyncIterator[str]:
    """A scratch database with the shared tables for the event tests alone (the outbox is theirs to empty)."""
    name = f"repitbot_test_events_{test_run_id}"
    url = await infra.create_scratch_database_with_shared_tables(name)
    yield url
    await infra.drop_database(name)


@pytest.fixture
async def db(events_db_url: str, service: str) -> AsyncIterator[Database]:
    """The test's service database; the outbox starts empty, so a relay publishes only this test's events."""
    database = Database(events_db_url, service=service, pool_size=5, max_overflow=5)
    async with database.transaction() as session:
        await session.execute(outbox_events.delete())
    yield database
    await database.dispose()


@pytest.fixture
async def scratch_table(db: Database, unique: str) -> AsyncIterator[str]:
    """A table of the test's own for a handler's or a request's effect: (id text primary key, note text)."""
    name = f"scratch_{unique}"
    async with db.transaction() as session:
        await session.execute(text(f"CREATE TABLE {name} (id text PRIMARY KEY, note text)"))
    yield name
    async with db.transaction() as session:
        await session.execute(text(f"DROP TABLE IF EXISTS {name}"))


@pytest.fixture
def rabbit_proxy(rabbit_url: str) -> Iterator[TcpProxy]:
    """A TcpProxy in front of the test RabbitMQ; ``rabbit_proxy.rewrite_url(rabbit_url)`` goes through it."""
    target = urlsplit(rabbit_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
        yield proxy


@pytest.fixture
async def make_rabbit_bus(service: str, exchange: str) -> AsyncIterator[Callable[..., Awaitable[RabbitMQBus]]]:
    """Build started RabbitMQ buses for this test's exchange; all are closed at the end."""
    buses: list[RabbitMQBus] = []

    async def make(url: str, **overrides: Any) -> RabbitMQBus:
        options: dict[str, Any] = {
            "service": service,
            "exchange": exchange,
            "delivery_limit": 3,
            "publish_timeout": 2.0,
            "connect_timeout": 2.0,
            "reconnect_backoff": FAST_RECONNECT,
            # more than one message in flight, as the services run it, so consumers get batches
            "prefetch": 2 * CONSUMER_BATCH_SIZE,
        }
        options.update(overrides)
        bus = RabbitMQBus(url, **options)
        buses.append(bus)
        await bus.start()
        return bus

    yield make
    for bus in buses:
        await bus.close()


@pytest.fixture
async def recorder(rabbit_url: str, exchange: str) -> AsyncIterator[EventRecorder]:
    async with EventRecorder(rabbit_url, exchange=exchange) as events:
        yield events


class BusHarness:
    """One bus implementation behind the questions the contract tests ask of it."""

    def __init__(self, kind: str, bus: RabbitMQBus | InMemoryBus, rabbit_url: str) -> None:
        self.kind = kind
        self.bus = bus
        self._rabbit_url = rabbit_url

    async def dead_letters(self, service: str, count: int) -> list[bytes]:
        if isinstance(self.bus, InMemoryBus):
            await self.bus.wait_idle()
            return list(self.bus.dead_letters.get(service, []))
        return await wait_for_dead_letters(self._rabbit_url, service, count)


@pytest.fixture(params=["rabbitmq", "memory"])
async def harness(
    request: pytest.FixtureRequest, rabbit_url: str, make_rabbit_bus: Callable[..., Awaitable[RabbitMQBus]]
) -> AsyncIterator[BusHarness]:
    """The same tests run against RabbitMQ and against the in-process bus."""
    if request.param == "memory":
        memory = InMemoryBus(delivery_limit=3)
        await memory.start()
        yield BusHarness("memory", memory, rabbit_url)
        await memory.close()
        return
    bus = await make_rabbit_bus(rabbit_url)
    await eventually(lambda: bus.is_connected, what="bus connected")
    yield BusHarness("rabbitmq", bus, rabbit_url)
