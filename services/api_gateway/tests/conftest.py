"""The gateway's tests run it for real: under uvicorn (httptools) on a loopback port in the test's
event loop, in front of small upstream apps served by uvicorn in threads (or processes, when a
test kills one), against the real Redis (the test database). Breakers, limits and token expiry
read a FakeClock that the tests advance. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from services.api_gateway.app import GatewayApp, build_gateway
from services.api_gateway.discovery import Resolver, system_resolver
from services.api_gateway.gateway import Gateway
from services.api_gateway.limiter import KEY_PREFIX
from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.settings import GatewaySettings
from services.api_gateway.tests.upstream import UpstreamState, upstream_app
from shared.clock import FakeClock
from shared.runner.layout import REPO_ROOT
from shared.testing.infra import TEST_REDIS_URL
from shared.testing.tokens import TokenFactory

WAIT_SECONDS = 15.0  # the bound on every start, stop and readiness wait
# Every session's fake clock starts at the same instant, so one session's limiter entries would
# count in the next one's windows (Redis keeps them for a real minute): each session has its keys.
SESSION_KEY_PREFIX = f"{KEY_PREFIX}test-{uuid.uuid4().hex[:8]}:"


# --- servers ------------------------------------------------------------------------------------


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test process keeps its own signal handling


class ThreadedServer:
    """An ASGI app served by uvicorn in a thread of its own (its own event loop)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning", access_log=False)
        self._server = _QuietServer(config)
        self._thread = threading.Thread(target=self._server.run, name=f"upstream-{host}", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the upstream on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(WAIT_SECONDS)


@dataclass
class Upstream:
    state: UpstreamState
    server: ThreadedServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port


@contextlib.contextmanager
def serving_upstream(
    name: str, *, jwks: dict[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[Upstream]:
    state = UpstreamState(name, jwks=jwks)
    server = ThreadedServer(upstream_app(state), host, port).start()
    try:
        yield Upstream(state, server)
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UpstreamProcess:
    """The test upstream as a process of its own, for a test that kills it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> UpstreamProcess:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "services.api_gateway.tests.upstream:app_from_environment",
        ]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "UPSTREAM_NAME": self.name})
        wait_until_ready(self.url + "/ready", self.process)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(WAIT_SECONDS)


def wait_until_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    with httpx.Client(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {WAIT_SECONDS}s")
            time.sleep(0.05)


# --- the gateway --------------------------------------------------------------------------------


@dataclass
class RunningGateway:
    app: GatewayApp
    url: str

    @property
    def gateway(self) -> Gateway:
        return self.app.gateway

    def client(self, **options: Any) -> httpx.AsyncClient:
        options.setdefault("timeout", 10)
        return httpx.AsyncClient(base_url=self.url, **options)


def gateway_settings(upstreams: Mapping[str, list[str]], *, jwks_url: str, **overrides: Any) -> GatewaySettings:
    options: dict[str, Any] = {
        "env": "test",
        "redis_url": TEST_REDIS_URL,
        "upstream_urls": dict(upstreams),
        "jwks_url": jwks_url,
        "health_check_interval_seconds": 3600,  # rounds run when a test calls registry.refresh()
        "breaker_failure_threshold": 3,
        "breaker_reset_seconds": 30,
        "rate_limit_key_prefix": SESSION_KEY_PREFIX,
    }
    options.update(overrides)
    return GatewaySettings(**options)


@contextlib.asynccontextmanager
async def running_gateway(
    settings: GatewaySettings,
    *,
    clock: FakeClock,
    resolver: Resolver = system_resolver,
    behind_trusted_proxy: bool = False,
) -> AsyncIterator[RunningGateway]:
    """The gateway under uvicorn (httptools, lifespan on) on a free loopback port, in this event loop.

    The tests' client is on loopback, which uvicorn trusts as a proxy by default (its
    X-Forwarded-For would become the client address): unless ``behind_trusted_proxy``,
    the gateway runs as the edge, as in compose, and its peer is the client."""
    app = build_gateway(settings, clock=clock, resolver=resolver)
    # IPPROTO_TCP named, or asyncio leaves Nagle on for accepted connections (40 ms per answer)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="on",
        log_config=None,
        timeout_graceful_shutdown=2,
        proxy_headers=behind_trusted_proxy,
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            await asyncio.sleep(0.01)
        yield RunningGateway(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, WAIT_SECONDS)
        sock.close()


async def breaker_state(client: httpx.AsyncClient, service: str = "user-service") -> str:
    """The breaker state of the service's one instance, as /gateway/services reports it."""
    [instance] = (await client.get("/gateway/services")).json()["services"][service]["instances"]
    return str(instance["breaker"]["state"])


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    """One fake clock for the session: tests advance it, tokens and limits read it."""
    return FakeClock()


@pytest.fixture(scope="session")
async def tokens(clock: FakeClock) -> TokenFactory:
    return await TokenFactory.create(clock=clock)


@pytest.fixture(scope="session")
def _upstream(tokens: TokenFactory) -> Iterator[Upstream]:
    with serving_upstream("u1", jwks=tokens.jwks) as upstream:
        yield upstream


@pytest.fixture
def upstream(_upstream: Upstream) -> Upstream:
    """The test upstream (user-service and material-service for the default gateway), its log emptied."""
    _upstream.state.seen.clear()
    _upstream.state.ready_status = 200
    return _upstream


@pytest.fixture
async def gateway(upstream: Upstream, clock: FakeClock) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(
        {"user-service": [upstream.url], "material-service": [upstream.url]}, jwks_url=upstream.url + JWKS_PATH
    )
    async with running_gateway(settings, clock=clock) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape (DESIGN.md §3) with the expected status and, optionally, code."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "correlation_id"}
    if code is not None:
        assert error["code"] == code, error
    return error
