"""Scratch resources on the shared local servers, created per test run and removed after it.

Tests never touch a developer's databases, vhost or Redis DB: everything here is
named ``repitbot_test_*`` and dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import SHARED_METADATA, async_url

PG_ADMIN_DSN = os.environ.get("REPITBOT_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBIT_HOST = os.environ.get("REPITBOT_RABBIT_HOST", "127.0.0.1:5672")
TEST_REDIS_URL = os.environ.get("REPITBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def _dsn_for(database: str, user: str = "postgres") -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    if user != "postgres":
        base = base.replace("postgres@", f"{user}@", 1)
    return f"{base}/{database}"


async def create_database(name: str, *, owner: str | None = None) -> str:
    """Create (or re-create) a database; returns its DSN."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if owner:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", owner)
            if not exists:
                await conn.execute(f'CREATE ROLE "{owner}" LOGIN')
            await conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        else:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _dsn_for(name, owner or "postgres")


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_scratch_database_with_shared_tables(name: str) -> str:
    """A database holding only the shared tables (outbox, inbox, idempotency, access links),
    for testing shared/ on its own. Services get theirs from their Alembic migrations."""
    import shared.tables  # noqa: F401

    dsn = await create_database(name)
    engine = create_async_engine(async_url(dsn))
    async with engine.begin() as conn:
        await conn.run_sync(SHARED_METADATA.create_all)
    await engine.dispose()
    return dsn


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(name: str) -> str:
    """A fresh RabbitMQ vhost for guest; returns its AMQP URL."""
    _rabbitmqctl("add_vhost", name) if not vhost_exists(name) else None
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"amqp://guest:guest@{RABBIT_HOST}/{name}"


def vhost_exists(name: str) -> bool:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run([exe, "-q", "list_vhosts"], check=True, capture_output=True, text=True, timeout=60)
    return name in out.stdout.split()


def delete_vhost(name: str) -> None:
    if vhost_exists(name):
        _rabbitmqctl("delete_vhost", name)


# --- for a service's in-process tests -------------------------------------------------------------


@asynccontextmanager
async def migrated_database(service: str, run_id: str, label: str = "") -> AsyncIterator[str]:
    """A scratch database for one service, at head through its real migrations; dropped afterwards.

    In a session fixture: ``async with infra.migrated_database("lesson-service", run_id) as url: yield url``.
    ``label`` tells apart more databases of one service in one run (e.g. two deliveries compared).
    """
    from shared.fleet import by_name
    from shared.migrations import upgrade

    spec = by_name(service)
    name = "_".join(part for part in ("repitbot_test", spec.package.removesuffix("_service"), label, run_id) if part)
    url = await create_database(name)
    try:
        await asyncio.to_thread(upgrade, spec, url)  # Alembic's env.py runs its own event loop
        yield url
    finally:
        await drop_database(name)


async def schema_differences(service: str, database_url: str) -> list[object]:
    """What Alembic's autogenerate sees between a migrated database and the service's models (empty
    when the migrations create exactly the models)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from shared.db import Database
    from shared.fleet import by_name
    from shared.migrations import target_metadata

    metadata = target_metadata(by_name(service))

    def differences(connection: Any) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata))

    database = Database(database_url, service=f"{service}-schema-check", pool_size=1, max_overflow=0)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(differences)
    finally:
        await database.dispose()


@contextmanager
def scratch_vhost(name: str) -> Iterator[str]:
    """A fresh RabbitMQ vhost (its AMQP URL), deleted afterwards."""
    url = create_vhost(name)
    try:
        yield url
    finally:
        delete_vhost(name)
