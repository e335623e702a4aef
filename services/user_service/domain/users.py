"""Accounts: registration (with or without an invite), password sign-in, Telegram sign-in, profile changes.

Inputs arrive validated and normalised (emails in lower case, time zones known
to the IANA database) by the API schemas.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.user_service import events
from services.user_service.domain import invites
from services.user_service.domain.passwords import hash_password, needs_rehash, verify_password
from services.user_service.models import DEFAULT_LANGUAGE, DEFAULT_TIMEZONE, User
from shared.db import unique_conflicts
from shared.errors import Conflict, NotFound, Unauthorized
from shared.events.outbox import add_event

# the 409 for an INSERT that broke the unique email or Telegram id
DUPLICATE_ACCOUNT = {
    "uq_users_telegram_id": ("telegram_id_taken", "This Telegram account is already registered"),
    "uq_users_email": ("email_taken", "An account with this email already exists"),
}


class InvalidCredentials(Unauthorized):
    def __init__(self) -> None:
        # one answer whether the email is unknown, has no password or the password is wrong
        super().__init__("The email or password is incorrect", code="invalid_credentials")


@dataclass(frozen=True)
class NewAccount:
    full_name: str
    email: str | None = None
    password: str | None = None
    telegram_id: int | None = None
    timezone: str | None = None
    language: str | None = None


async def register(
    session: AsyncSession, account: NewAccount, *, invite_code: str | None, now: datetime, role: str = "tutor"
) -> User:
    """Create an account: a tutor (or ``role``) without an invite, else the invite's role linked as it says."""
    # Hash before taking the invite's row lock: argon2 is deliberately slow.
    password_hash = await hash_password(account.password) if account.password is not None else None
    invite = await invites.claim_invite(session, invite_code, now=now) if invite_code else None
    user = User(
        email=account.email,
        password_hash=password_hash,
        telegram_id=account.telegram_id,
        full_name=account.full_name,
        role=invite.role if invite else role,
        timezone=account.timezone or DEFAULT_TIMEZONE,
        language=account.language or DEFAULT_LANGUAGE,
    )
    session.add(user)
    with unique_conflicts(DUPLICATE_ACCOUNT):
        async with session.begin_nested():  # a savepoint: the Telegram path recovers from a lost race
            await session.flush()
    await add_event(
        session, events.user_registered(user, tutor_id=invite.tutor_id if invite else None), occurred_at=now
    )
    if invite is not None:
        await invites.redeem_invite(session, invite, user, now=now)
    return user


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    user = await session.scalar(select(User).where(User.email == email))
    # verify_password runs even for an unknown email, so timing does not reveal which emails exist
    valid = await verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials
    if needs_rehash(user.password_hash or ""):
        user.password_hash = await hash_password(password)
    return user


@dataclass(frozen=True)
class TelegramSignIn:
    user: User
    created: bool


async def sign_in_with_telegram(
    session: AsyncSession,
    *,
    telegram_id: int,
    full_name: str,
    language: str | None,
    invite_code: str | None,
    now: datetime,
) -> TelegramSignIn:
    """Find the user by Telegram id or create them, and redeem the invite if one came with the /start."""
    user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
    if user is None:
        try:
            user = await register(
                session,
                NewAccount(full_name=full_name, telegram_id=telegram_id, language=language),
                invite_code=invite_code,
                now=now,
            )
            return TelegramSignIn(user, created=True)
        except Conflict as exc:
            # A concurrent first /start of the same user may have won the insert (or, waiting on
            # the same invite, redeemed it first): carry on with the account it created.
            if exc.code not in {"telegram_id_taken", "invite_used"}:
                raise
            user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
            if user is None:
                raise
    if not user.is_active:
        raise Unauthorized("This account is disabled", code="account_disabled")
    if invite_code:
        invite = await invites.claim_invite(session, invite_code, now=now, redeemer_id=user.id)
        await invites.redeem_invite(session, invite, user, now=now)
    return TelegramSignIn(user, created=False)


async def update_profile(session: AsyncSession, user: User, changes: dict[str, object], *, now: datetime) -> User:
    """Apply the given profile fields; announce ``user.updated`` only when something changed."""
    changed = {name: value for name, value in changes.items() if getattr(user, name) != value}
    if not changed:
        return user
    for name, value in changed.items():
        setattr(user, name, value)
    await session.flush()
    await add_event(session, events.user_updated(user), occurred_at=now)
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user")
    return user
