"""Operator commands: ``python -m services.user_service.cli create-admin --email ... --full-name ...``.

Admins are created only here (``make create-admin``), never over HTTP. The
password comes from ``--password``, else ``ADMIN_PASSWORD``, else a prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from services.user_service.api.schemas import Email, FullName, Password
from services.user_service.domain import users
from services.user_service.models import User
from services.user_service.settings import UserServiceSettings
from shared.clock import SYSTEM_CLOCK
from shared.db import Database


class AdminAccount(BaseModel):
    email: Email
    password: Password
    full_name: FullName


async def create_admin(settings: UserServiceSettings, account: AdminAccount) -> str:
    """Create the admin; an existing admin with this email is left as it is. Returns what happened."""
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set")
    database = Database(settings.database_url, service=settings.service_name, pool_size=1, max_overflow=0)
    try:
        async with database.transaction() as session:
            existing = await session.scalar(select(User).where(User.email == account.email))
            if existing is not None:
                if existing.role != "admin":
                    raise SystemExit(f"{account.email} already belongs to a {existing.role}; not changed")
                return f"admin {account.email} already exists ({existing.id})"
            user = await users.register(
                session,
                users.NewAccount(email=account.email, password=account.password, full_name=account.full_name),
                invite_code=None,
                now=SYSTEM_CLOCK.now(),
                role="admin",
            )
            return f"created admin {user.email} ({user.id})"
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.user_service.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create an admin account (may read everything)")
    admin.add_argument("--email", required=True)
    admin.add_argument("--full-name", required=True)
    admin.add_argument("--password", help="defaults to $ADMIN_PASSWORD, else asked for")
    args = parser.parse_args(argv)

    password = args.password or os.environ.get("ADMIN_PASSWORD") or getpass.getpass("Admin password: ")
    try:
        account = AdminAccount(email=args.email, password=password, full_name=args.full_name)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
        return 2
    print(asyncio.run(create_admin(UserServiceSettings(), account)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
