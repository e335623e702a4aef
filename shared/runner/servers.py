"""The shared local servers every fleet needs: PostgreSQL, Redis, RabbitMQ.

Where each one is comes from the environment (``REPITBOT_*``, defaults on
loopback). A loopback server that is installed but not running is started with
the same command CI uses and waited for; one that is not installed is named
with the command that installs it. A server elsewhere is only checked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import redis

from shared.runner.aio import run_sync

DEBIAN_PACKAGES = ("postgresql", "redis-server", "rabbitmq-server")
INSTALL_HINT = "make deps  (apt-get update && apt-get install -y " + " ".join(DEBIAN_PACKAGES) + ")"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ServerError(RuntimeError):
    """A shared server is missing, unreachable or would not start."""


@dataclass(frozen=True)
class Endpoints:
    """Where the shared servers are, and the accounts the runner uses on them."""

    pg_admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    rabbit_host: str = "127.0.0.1:5672"
    rabbit_user: str = "guest"  # RabbitMQ lets guest in from loopback only
    rabbit_password: str = "guest"
    redis_url: str = "redis://127.0.0.1:6379"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Endpoints:
        defaults = cls()
        return cls(
            pg_admin_dsn=environ.get("REPITBOT_PG_ADMIN_DSN", defaults.pg_admin_dsn),
            rabbit_host=environ.get("REPITBOT_RABBIT_HOST", defaults.rabbit_host),
            rabbit_user=environ.get("REPITBOT_RABBIT_USER", defaults.rabbit_user),
            rabbit_password=environ.get("REPITBOT_RABBIT_PASSWORD", defaults.rabbit_password),
            redis_url=environ.get("REPITBOT_REDIS_URL", defaults.redis_url).rstrip("/"),
        )

    @property
    def pg_host(self) -> str:
        return urlsplit(self.pg_admin_dsn).hostname or "127.0.0.1"

    @property
    def pg_port(self) -> int:
        return urlsplit(self.pg_admin_dsn).port or 5432

    def database_url(self, database: str, role: str, password: str) -> str:
        return f"postgresql://{role}:{quote(password, safe='')}@{self.pg_host}:{self.pg_port}/{database}"

    def rabbit_url(self, vhost: str) -> str:
        credentials = f"{quote(self.rabbit_user, safe='')}:{quote(self.rabbit_password, safe='')}"
        return f"amqp://{credentials}@{self.rabbit_host}/{quote(vhost, safe='')}"

    def redis_database_url(self, db: int) -> str:
        return f"{self.redis_url}/{db}"


@dataclass(frozen=True)
class LocalServer:
    name: str
    host: str
    port: int
    executable: str  # present when the server is installed
    start_command: tuple[str, ...]
    start_timeout: float
    answers: Callable[[], bool]

    @property
    def is_local(self) -> bool:
        return self.host in _LOOPBACK

    def is_installed(self) -> bool:
        return _which(self.executable) is not None


def _which(executable: str) -> str | None:
    # root's PATH has /usr/sbin; a developer's often does not, and rabbitmq-server lives there
    return shutil.which(executable) or shutil.which(executable, path="/usr/sbin:/usr/lib/postgresql/bin")


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _postgres_answers(dsn: str) -> bool:
    async def connect() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()

    try:
        run_sync(connect())
    except asyncpg.CannotConnectNowError:
        return False  # starting up or shutting down
    except asyncpg.PostgresError:
        return True  # it answers, but refuses us (e.g. a password is needed): prepare() will say so
    except (OSError, TimeoutError):
        return False
    return True


def _redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _postgres_cluster_version() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir())
    return versions[-1] if versions else "15"


def local_servers(endpoints: Endpoints) -> tuple[LocalServer, ...]:
    rabbit_host, _, rabbit_port = endpoints.rabbit_host.rpartition(":")
    redis_parts = urlsplit(endpoints.redis_url)
    return (
        LocalServer(
            name="PostgreSQL",
            host=endpoints.pg_host,
            port=endpoints.pg_port,
            executable="pg_ctlcluster",
            start_command=(
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                _postgres_cluster_version(),
                "main",
                "start",
            ),
            start_timeout=60,
            answers=lambda: _postgres_answers(endpoints.pg_admin_dsn),
        ),
        LocalServer(
            name="Redis",
            host=redis_parts.hostname or "127.0.0.1",
            port=redis_parts.port or 6379,
            executable="redis-server",
            start_command=(
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                str(redis_parts.port or 6379),
                "--save",
                "",
                "--appendonly",
                "no",
            ),  # fmt: skip
            start_timeout=15,
            answers=lambda: _redis_answers(endpoints.redis_database_url(0)),
        ),
        LocalServer(
            name="RabbitMQ",
            host=rabbit_host or "127.0.0.1",
            port=int(rabbit_port or 5672),
            executable="rabbitmq-server",
            start_command=("rabbitmq-server", "-detached"),
            start_timeout=120,
            # the AMQP listener opens last in RabbitMQ's boot, so an open port means booted
            answers=lambda: _port_open(rabbit_host or "127.0.0.1", int(rabbit_port or 5672)),
        ),
    )


def ensure_servers(endpoints: Endpoints, *, say: Callable[[str], None] = print) -> None:
    """Every shared server answers when this returns, or :class:`ServerError` says which does not and why."""
    servers = local_servers(endpoints)
    missing = [s for s in servers if s.is_local and not s.is_installed() and not s.answers()]
    if missing:
        names = ", ".join(s.name for s in missing)
        raise ServerError(f"{names} not installed; install with: {INSTALL_HINT}")
    for server in servers:
        if server.answers():
            continue
        if not server.is_local:
            raise ServerError(f"{server.name} does not answer at {server.host}:{server.port}")
        _start(server, say)


def _start(server: LocalServer, say: Callable[[str], None]) -> None:
    command = [_which(server.start_command[0]) or server.start_command[0], *server.start_command[1:]]
    say(f"starting {server.name}: {' '.join(server.start_command)}")
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, cwd="/tmp", check=False
    )
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise ServerError(f"could not start {server.name} ({' '.join(server.start_command)}): {output}")
    deadline = time.monotonic() + server.start_timeout
    while not server.answers():
        if time.monotonic() > deadline:
            raise ServerError(f"{server.name} started but did not answer within {server.start_timeout:.0f}s")
        time.sleep(0.5)
    say(f"{server.name} is up on {server.host}:{server.port}")


def server_status(endpoints: Endpoints) -> dict[str, bool]:
    return {server.name: server.answers() for server in local_servers(endpoints)}
