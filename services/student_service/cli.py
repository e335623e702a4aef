"""``python -m services.student_service.cli rebuild``: recompute every profile's XP total, level and
streak figures from the XP ledger and the study days (``domain/rebuild.py``), in one transaction."""

from __future__ import annotations

from services.student_service.domain.rebuild import rebuild as rebuild_profiles
from services.student_service.settings import StudentServiceSettings
from shared import cli


async def rebuild(database_url: str) -> int:
    return await cli.in_one_transaction(database_url, "student-service", rebuild_profiles)


def main(argv: list[str] | None = None) -> int:
    done = "rebuilt {} profiles from the XP ledger and the study days"
    return cli.run(argv, StudentServiceSettings, {"rebuild": (rebuild_profiles, done)})


if __name__ == "__main__":
    raise SystemExit(main())
