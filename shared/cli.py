"""A service's maintenance commands: ``python -m services.<package>.cli <command>``.

Each command is one function of a session, run in one transaction against the service's own
database (readers see the old state until it commits), and a line saying what it did::

    def main(argv=None) -> int:
        return run(argv, StudentServiceSettings, {"rebuild": (rebuild, "rebuilt {} profiles")})
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import ServiceSettings
from shared.db import Database

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[int]]


async def in_one_transaction(database_url: str, service: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    db = Database(database_url, service=service, pool_size=1, max_overflow=0)
    try:
        async with db.transaction() as session:
            return await work(session)
    finally:
        await db.dispose()


def run(argv: list[str] | None, settings_class: type[ServiceSettings], commands: Mapping[str, tuple[Work, str]]) -> int:
    settings = settings_class()
    parser = argparse.ArgumentParser(prog=f"python -m services.{settings.service_name.replace('-', '_')}.cli")
    parser.add_argument("command", choices=sorted(commands))
    command = parser.parse_args(argv).command
    work, done = commands[command]
    count = asyncio.run(in_one_transaction(settings.database_url or "", settings.service_name, work))
    print(done.format(count))
    return 0
