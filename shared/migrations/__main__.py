"""``python -m shared.migrations upgrade [SERVICE ...]`` / ``revision SERVICE -m MESSAGE``.

The database URL is ``DATABASE_URL`` when one service is named, else each
service's local URL (``<PACKAGE>_DATABASE_URL`` overrides it, e.g. USER_SERVICE_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import os
import sys

from alembic import command

from shared.fleet import FLEET, by_name, local_database_url
from shared.migrations import alembic_config, upgrade


def _url(spec, single: bool) -> str:  # type: ignore[no-untyped-def]
    override = os.environ.get(f"{spec.env_prefix}DATABASE_URL")
    if override:
        return override
    if single and os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    return local_database_url(spec, test=os.environ.get("REPITBOT_TEST_FLEET") == "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="migrate services to head (all when none named)")
    up.add_argument("services", nargs="*")
    rev = sub.add_parser("revision", help="autogenerate a new revision for one service")
    rev.add_argument("service")
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)

    if args.command == "upgrade":
        specs = [by_name(n) for n in args.services] or [s for s in FLEET if s.has_database]
        for spec in specs:
            print(f"migrating {spec.name}", file=sys.stderr)
            upgrade(spec, _url(spec, len(specs) == 1))
    else:
        spec = by_name(args.service)
        command.revision(alembic_config(spec, _url(spec, True)), message=args.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
