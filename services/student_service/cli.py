"""``python -m services.student_service.cli rebuild``: recompute every profile's XP total, level and
streak figures from the XP ledger and the study days (``domain/rebuild.py``).

Runs in one transaction: readers see the old figures until the new ones are committed.
"""

from __future__ import annotations

import argparse
import asyncio

from services.student_service.domain import rebuild as rebuilding
from services.student_service.settings import StudentServiceSettings
from shared.db import Database


async def rebuild(database_url: str) -> int:
    db = Database(database_url, service="student-service", pool_size=1, max_overflow=0)
    try:
        async with db.transaction() as session:
            return await rebuilding.rebuild(session)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.student_service.cli")
    parser.add_argument("command", choices=["rebuild"])
    parser.parse_args(argv)
    settings = StudentServiceSettings()
    count = asyncio.run(rebuild(settings.database_url or ""))
    print(f"rebuilt {count} profiles from the XP ledger and the study days")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
