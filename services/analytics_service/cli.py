"""``python -m services.analytics_service.cli rebuild``: recompute every read model from ``event_log``,
in one transaction (readers see the old models until the new ones are committed)."""

from __future__ import annotations

from services.analytics_service.domain.store import rebuild as rebuild_models
from services.analytics_service.settings import AnalyticsServiceSettings
from shared import cli


async def rebuild(database_url: str) -> int:
    return await cli.in_one_transaction(database_url, "analytics-service", rebuild_models)


def main(argv: list[str] | None = None) -> int:
    return cli.run(
        argv, AnalyticsServiceSettings, {"rebuild": (rebuild_models, "rebuilt the read models from {} logged events")}
    )


if __name__ == "__main__":
    raise SystemExit(main())
