"""A tutor's one-time, expiring invites for students and for parents of their students (DESIGN.md §4).

The code travels in a Telegram deep link ``https://t.me/<bot>?start=<code>``:
Telegram allows at most 64 characters from ``A-Za-z0-9_-`` there. Only its
SHA-256 is stored; the tutor sees the code once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.user_service.domain import links
from services.user_service.domain.tokens import opaque_token, token_digest
from services.user_service.models import Invite, StudentLink, User
from shared.errors import Conflict, NotFound, Unprocessable
from shared.housekeeping import older_than_age

# for housekeeping (``:age`` past their expiry, never used): its code is then "not valid" rather than
# "expired"; a redeemed invite stays, the record of who joined through it
EXPIRED_UNUSED_INVITES = delete(Invite).where(Invite.redeemed_at.is_(None), older_than_age(Invite.expires_at))


@dataclass(frozen=True)
class IssuedInvite:
    code: str
    deep_link: str
    expires_at: datetime


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


async def create_invite(
    session: AsyncSession,
    *,
    tutor_id: uuid.UUID,
    role: str,
    student_id: uuid.UUID | None,
    bot_username: str,
    ttl: timedelta,
    now: datetime,
) -> IssuedInvite:
    if role == "parent":
        if student_id is None:
            raise Unprocessable(
                "A parent invite names the student",
                details=[{"field": "student_id", "message": "required for a parent invite", "type": "missing"}],
            )
        if not await links.is_tutors_student(session, tutor_id, student_id):
            raise NotFound("No such student")
    elif student_id is not None:
        raise Unprocessable(
            "Only a parent invite names a student",
            details=[{"field": "student_id", "message": "only for a parent invite", "type": "extra"}],
        )
    code = opaque_token()  # 43 characters of A-Za-z0-9_-
    invite = Invite(
        code_hash=token_digest(code), tutor_id=tutor_id, role=role, student_id=student_id, expires_at=now + ttl
    )
    session.add(invite)
    await session.flush()
    return IssuedInvite(code=code, deep_link=deep_link(bot_username, code), expires_at=invite.expires_at)


async def claim_invite(
    session: AsyncSession, code: str, *, now: datetime, redeemer_id: uuid.UUID | None = None
) -> Invite:
    """The usable invite for ``code``, locked until the transaction ends.

    A code already redeemed by ``redeemer_id`` is returned again (the bot may
    repeat a sign-in); redeeming it once more then changes nothing.
    """
    invite = await session.scalar(select(Invite).where(Invite.code_hash == token_digest(code)).with_for_update())
    if invite is None:
        raise Unprocessable(
            "The invite code is not valid",
            code="invite_invalid",
            details=[{"field": "invite_code", "message": "unknown invite code", "type": "invalid"}],
        )
    if invite.redeemed_at is not None:
        if redeemer_id is not None and invite.redeemed_by == redeemer_id:
            return invite
        raise Conflict("This invite has already been used", code="invite_used")
    if invite.expires_at <= now:
        raise Conflict("This invite has expired; ask your tutor for a new one", code="invite_expired")
    return invite


async def redeem_invite(session: AsyncSession, invite: Invite, user: User, *, now: datetime) -> StudentLink | None:
    """Link ``user`` as the invite says and spend the invite. Returns the new link, if one was made."""
    if invite.redeemed_by == user.id:
        return None
    if user.role != invite.role:
        raise Conflict(
            f"This invite is for a {invite.role}, and this account is a {user.role}", code="invite_role_mismatch"
        )
    if invite.role == "student":
        link = await links.link_student(
            session,
            principal_id=invite.tutor_id,
            student_id=user.id,
            relation="tutor",
            tutor_id=invite.tutor_id,
            now=now,
        )
    else:
        assert invite.student_id is not None  # a database constraint: parent invites name the student
        if not await links.is_tutors_student(session, invite.tutor_id, invite.student_id):
            # the tutor let the student go after inviting the parent
            raise Conflict("This invite is no longer valid; ask your tutor for a new one", code="invite_revoked")
        link = await links.link_student(
            session,
            principal_id=user.id,
            student_id=invite.student_id,
            relation="parent",
            tutor_id=invite.tutor_id,
            now=now,
        )
    invite.redeemed_at = now
    invite.redeemed_by = user.id
    return link
