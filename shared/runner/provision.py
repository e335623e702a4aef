"""Idempotent provisioning on the shared servers: roles, databases, the vhost, the events exchange.

Each service has its own role and database; ``CONNECT`` on a service's database
is revoked from ``PUBLIC`` and granted to its role alone, so a service cannot
open another's database. Running any of this twice changes nothing the second
time (a role's password is re-set to the one in ``var/dev-secrets/``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
import asyncpg
import redis

from shared.runner.aio import run_sync

EVENTS_EXCHANGE = "repitbot.events"  # the default of ServiceSettings.events_exchange


@dataclass(frozen=True)
class DatabasePlan:
    database: str
    role: str
    password: str


# --- PostgreSQL --------------------------------------------------------------------------------


async def _sql(conn: asyncpg.Connection, template: str, *args: str) -> str:
    """A statement with identifiers (%I) and literals (%L) quoted by the server itself."""
    return await conn.fetchval(
        f"SELECT format('{template}', {', '.join(f'${i + 1}::text' for i in range(len(args)))})", *args
    )


async def _ensure_databases(admin_dsn: str, plans: list[DatabasePlan]) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        for plan in plans:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", plan.role):
                try:
                    await conn.execute(await _sql(conn, "CREATE ROLE %I", plan.role))
                except asyncpg.DuplicateObjectError:
                    pass  # created meanwhile by a concurrent run
            await conn.execute(
                await _sql(
                    conn,
                    "ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L",
                    plan.role,
                    plan.password,
                )
            )
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", plan.database):
                try:
                    await conn.execute(await _sql(conn, "CREATE DATABASE %I OWNER %I", plan.database, plan.role))
                except asyncpg.DuplicateDatabaseError:
                    pass
            await conn.execute(await _sql(conn, "ALTER DATABASE %I OWNER TO %I", plan.database, plan.role))
            await conn.execute(await _sql(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC", plan.database))
            await conn.execute(
                await _sql(conn, "GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I", plan.database, plan.role)
            )
    finally:
        await conn.close()


async def _drop_databases(admin_dsn: str, databases: list[str], roles: list[str]) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        for database in databases:
            await conn.execute(await _sql(conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", database))
        for role in roles:
            await conn.execute(await _sql(conn, "DROP ROLE IF EXISTS %I", role))
    finally:
        await conn.close()


def ensure_databases(admin_dsn: str, plans: Iterable[DatabasePlan]) -> None:
    run_sync(_ensure_databases(admin_dsn, list(plans)))


def drop_databases(admin_dsn: str, databases: Iterable[str], *, roles: Iterable[str] = ()) -> None:
    """Drop databases (connections are closed by force), then roles that own nothing any more."""
    run_sync(_drop_databases(admin_dsn, list(databases), list(roles)))


# --- RabbitMQ ----------------------------------------------------------------------------------


def _rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin")
    if exe is None:
        raise RuntimeError("rabbitmqctl not found: the runner manages vhosts on a local RabbitMQ (make deps)")
    return subprocess.run(
        [exe, "-q", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=check
    )


def ensure_vhost(vhost: str, user: str) -> None:
    _rabbitmqctl("add_vhost", vhost)  # a no-op when it exists
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    result = _rabbitmqctl("delete_vhost", vhost, check=False)
    if result.returncode not in (0, 65):  # 65: no such vhost, which is what we want
        raise RuntimeError(f"rabbitmqctl delete_vhost {vhost}: {result.stderr.strip()}")


def vhost_exists(vhost: str) -> bool:
    return vhost in _rabbitmqctl("list_vhosts", "name").stdout.split()


async def _declare_exchange(rabbit_url: str, exchange: str) -> None:
    connection = await aio_pika.connect(rabbit_url, timeout=15)
    try:
        channel = await connection.channel()
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    finally:
        await connection.close()


def declare_events_exchange(rabbit_url: str, exchange: str = EVENTS_EXCHANGE) -> None:
    """The one topic exchange every service publishes to; durable, declared idempotently."""
    run_sync(_declare_exchange(rabbit_url, exchange))


# --- Redis -------------------------------------------------------------------------------------


def flush_redis_database(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()
