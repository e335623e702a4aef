"""The test fleet: every service as real processes, beside (never on) a developer's running fleet.

A pytest plugin (registered with ``-p shared.testing.fleet`` in pyproject's
``addopts``), so every test module — ``tests/``, ``services/*/tests``,
``test_microservices_system.py`` — can ask for the session fixture::

    async def test_register(fleet):
        async with fleet.client("user-service") as client:
            response = await client.post("/api/v1/auth/register", json={...})

It is :mod:`shared.runner` with the test layout: ports +10000 (18001...),
databases ``repitbot_test_<svc>`` (re-created empty), a fresh vhost
``repitbot_test_<run id>``, Redis database 15, and its own supervisord with
its socket, pid file and logs under ``var/test-fleet-<run id>/``. At the end it
stops supervisord and removes the databases, the vhost and the Redis keys; the
logs of the last run stay for a post-mortem until the next run starts.

Tests that use it are marked ``fleet`` (``pytest -m "not fleet"`` skips them).
One test session at a time per machine: the test databases are named per service,
not per run (a second session would find the ports taken and say so).

Fault injection: lesson-, payment- and student-service (the path a completed lesson
takes to a charge and XP) reach PostgreSQL and RabbitMQ through a
:class:`~shared.testing.tcp_proxy.TcpProxy` each, started with the fleet, so a test
can cut or hang one service's link while the fleet runs::

    broker = fleet.links("lesson-service").broker
    broker.cut()      # connections dropped, new ones refused
    ...
    broker.restore()  # a test that cuts restores, also when it fails (try/finally)

``fleet.env`` is what the processes were started with (the proxied URLs);
``fleet.direct_database_url(service)`` bypasses the proxy, for checks made while a link is cut.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from shared.fleet import by_name
from shared.runner import lifecycle
from shared.runner.layout import VAR_DIR, FleetLayout
from shared.runner.servers import Endpoints
from shared.runner.supervisor import Supervisor
from shared.testing.tcp_proxy import TcpProxy

# the services whose database and broker links go through a proxy a test can cut
FAULT_INJECTABLE = ("lesson-service", "payment-service", "student-service")
READY_TIMEOUT_SECONDS = float(os.environ.get("REPITBOT_TEST_FLEET_READY_TIMEOUT", 90))
_OWNER_FILE = "owner.pid"  # the pytest process that runs this fleet
_CLEANED_FILE = "cleaned"  # written once a run's resources are gone


def _say(message: str) -> None:
    print(f"[test fleet] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ServiceLinks:
    """A service's links to its dependencies, each through a proxy a test can cut, hang and restore."""

    service: str
    database: TcpProxy
    broker: TcpProxy
    direct_database_url: str

    def restore(self) -> None:
        self.database.restore()
        self.broker.restore()


@dataclass(frozen=True)
class TestFleet:
    """A running test fleet: where each service is, what it was given, and clients for it."""

    __test__ = False  # not a test class, despite its name

    prepared: lifecycle.PreparedFleet
    urls: dict[str, str] = field(default_factory=dict)
    service_links: dict[str, ServiceLinks] = field(default_factory=dict)

    @property
    def layout(self) -> FleetLayout:
        return self.prepared.layout

    @property
    def rabbit_url(self) -> str:
        return self.prepared.rabbit_url

    @property
    def redis_url(self) -> str:
        return self.prepared.redis_url

    @property
    def env(self) -> dict[str, dict[str, str]]:
        """Service name → the exact environment its process was started with."""
        return self.prepared.environments

    def url(self, service: str) -> str:
        return self.urls[by_name(service).name]

    def links(self, service: str) -> ServiceLinks:
        """The proxied links of one of :data:`FAULT_INJECTABLE`."""
        return self.service_links[by_name(service).name]

    def direct_database_url(self, service: str) -> str:
        """The service's database, not through its proxy (works while the link is cut)."""
        name = by_name(service).name
        if name in self.service_links:
            return self.service_links[name].direct_database_url
        return self.env[name]["DATABASE_URL"]

    def client(self, service: str, **kwargs: Any) -> httpx.AsyncClient:
        """An async client on a service's base URL; use it as ``async with fleet.client(...)``."""
        kwargs.setdefault("timeout", 10)
        return httpx.AsyncClient(base_url=self.url(service), **kwargs)

    def sync_client(self, service: str, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 10)
        return httpx.Client(base_url=self.url(service), **kwargs)

    def client_secret(self, client_id: str) -> str:
        """A client-credentials secret user-service was given (e.g. ``telegram-bot``'s)."""
        return (self.layout.secrets_dir / f"client-secret.{client_id}").read_text().strip()

    def pids(self) -> dict[str, int]:
        """Service name → the pid of its uvicorn process (0 when not running)."""
        return {name: info["pid"] for name, info in Supervisor(self.layout).processes().items()}

    def log_path(self, service: str) -> Path:
        return self.layout.log_path(by_name(service))

    def log_tail(self, service: str, lines: int = lifecycle.LOG_TAIL_LINES) -> str:
        return lifecycle.log_tail(self.log_path(service), lines)


@contextmanager
def running_test_fleet(run_id: str | None = None) -> Iterator[TestFleet]:
    """Start a test fleet, yield it, and remove everything it made, also when starting fails."""
    layout = FleetLayout.for_test_run(run_id or uuid.uuid4().hex[:8])
    endpoints = Endpoints.from_environment()
    sweep_abandoned_runs(endpoints)
    lifecycle.refuse_busy_ports(layout)  # before anything is dropped: another session may own them
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    (layout.state_dir / _OWNER_FILE).write_text(str(os.getpid()))
    proxies: list[TcpProxy] = []
    try:
        prepared = lifecycle.prepare(layout, endpoints=endpoints, fresh_databases=True, say=_say)
        links = _proxy_links(prepared, proxies)
        lifecycle.start(prepared, ready_timeout=READY_TIMEOUT_SECONDS, say=_say)
        yield TestFleet(prepared, lifecycle.service_urls(layout), links)
    finally:
        try:
            _shut_down(layout, endpoints)
        finally:
            for proxy in proxies:
                proxy.stop()


def _proxy_links(prepared: lifecycle.PreparedFleet, proxies: list[TcpProxy]) -> dict[str, ServiceLinks]:
    """Put a proxy between each fault-injectable service and its database and broker (after the
    migrations, which ran direct): the service's environment names the proxy instead."""
    links: dict[str, ServiceLinks] = {}
    for name in FAULT_INJECTABLE:
        env = prepared.environments[name]
        direct_database_url = env["DATABASE_URL"]
        started = []
        for key in ("DATABASE_URL", "RABBITMQ_URL"):
            target = urlsplit(env[key])
            proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or _DEFAULT_PORTS[key])
            proxy.start()
            proxies.append(proxy)
            env[key] = proxy.rewrite_url(env[key])
            started.append(proxy)
        links[name] = ServiceLinks(name, started[0], started[1], direct_database_url)
    return links


_DEFAULT_PORTS = {"DATABASE_URL": 5432, "RABBITMQ_URL": 5672}


def _shut_down(layout: FleetLayout, endpoints: Endpoints) -> None:
    try:
        lifecycle.stop(layout)
    finally:
        lifecycle.teardown(layout, endpoints)
        (layout.state_dir / _CLEANED_FILE).touch()
        _say(f"stopped; logs kept in {layout.log_dir} until the next run")


def sweep_abandoned_runs(endpoints: Endpoints) -> None:
    """Remove earlier runs' folders; stop and clean up a run whose pytest died without doing so."""
    for state_dir in sorted(VAR_DIR.glob("test-fleet-*")):
        layout = FleetLayout.for_test_run(state_dir.name.removeprefix("test-fleet-"))
        if not (state_dir / _CLEANED_FILE).exists():
            if _owner_alive(state_dir):
                continue  # a concurrent test session's fleet
            _say(f"cleaning up abandoned run {layout.name}")
            _shut_down(layout, endpoints)
        shutil.rmtree(state_dir, ignore_errors=True)


def _owner_alive(state_dir: Path) -> bool:
    try:
        pid = int((state_dir / _OWNER_FILE).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


@pytest.fixture(scope="session")
def fleet() -> Iterator[TestFleet]:
    """The whole fleet as processes on test ports, started once per session (see the module doc)."""
    with running_test_fleet() as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "fleet" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fleet)
