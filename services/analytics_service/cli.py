"""``python -m services.analytics_service.cli rebuild``: recompute every read model from ``event_log``.

Runs in one transaction: readers see the old models until the new ones are committed.
"""

from __future__ import annotations

import argparse
import asyncio

from services.analytics_service.domain import store
from services.analytics_service.settings import AnalyticsServiceSettings
from shared.db import Database


async def rebuild(database_url: str) -> int:
    db = Database(database_url, service="analytics-service", pool_size=1, max_overflow=0)
    try:
        async with db.transaction() as session:
            return await store.rebuild(session)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.analytics_service.cli")
    parser.add_argument("command", choices=["rebuild"])
    parser.parse_args(argv)
    settings = AnalyticsServiceSettings()
    count = asyncio.run(rebuild(settings.database_url or ""))
    print(f"rebuilt the read models from {count} logged events")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
