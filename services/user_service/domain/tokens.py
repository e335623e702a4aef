"""Access tokens (RS256 JWTs) and refresh tokens (opaque, stored hashed, rotated in families)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from jose import jwt
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.user_service.domain.keys import ALGORITHM, SigningKey
from services.user_service.models import RefreshToken, User
from shared.auth.jwt import access_token_claims
from shared.errors import Unauthorized
from shared.housekeeping import older_than_age

# for housekeeping (``:age`` past their expiry): such a token refreshes nothing any more; the price is that
# presenting one after it is gone is "invalid" rather than "reused" (its family is not revoked for it)
EXPIRED_REFRESH_TOKENS = delete(RefreshToken).where(older_than_age(RefreshToken.expires_at))

SERVICE_ROLE = "service"


class InvalidRefreshToken(Unauthorized):
    def __init__(self) -> None:
        super().__init__("The refresh token is invalid or expired", code="invalid_refresh_token")


class RefreshTokenReused(Unauthorized):
    """A rotated token came back: someone else holds the family. Its revocation must be committed."""

    def __init__(self) -> None:
        super().__init__("The refresh token was already used; sign in again", code="refresh_token_reused")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class TokenIssuer:
    signing_key: SigningKey
    issuer: str
    audience: str
    access_ttl: timedelta
    refresh_ttl: timedelta

    def access_token(self, subject: str, role: str, now: datetime) -> str:
        claims = access_token_claims(
            subject, role, issuer=self.issuer, audience=self.audience, issued_at=now, ttl=self.access_ttl
        )
        return jwt.encode(claims, self.signing_key.private, algorithm=ALGORITHM, headers={"kid": self.signing_key.kid})

    @property
    def access_ttl_seconds(self) -> int:
        return int(self.access_ttl.total_seconds())


def opaque_token() -> str:
    """A random bearer string (256 bits, URL-safe) for refresh tokens and invite codes."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored instead of a bearer string: a leaked table row is useless without the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: AsyncSession, issuer: TokenIssuer, user: User, now: datetime) -> TokenPair:
    """A sign-in: an access token and the first refresh token of a new family."""
    refresh = _add_refresh_token(session, issuer, user.id, family_id=uuid.uuid4(), now=now)
    return TokenPair(issuer.access_token(str(user.id), user.role, now), refresh, issuer.access_ttl_seconds)


async def refresh_session(session: AsyncSession, issuer: TokenIssuer, presented: str, now: datetime) -> TokenPair:
    """Exchange a refresh token for a new pair; the presented one is rotated out.

    Raises :class:`RefreshTokenReused` after revoking the family when the token
    was already rotated; the caller commits that revocation before answering.
    """
    row = await session.execute(
        select(RefreshToken, User)
        .join(User, User.id == RefreshToken.user_id)
        .where(RefreshToken.token_hash == token_digest(presented))
        .with_for_update(of=RefreshToken)  # two refreshes with one token: the second sees it rotated
    )
    found = row.one_or_none()
    if found is None:
        raise InvalidRefreshToken
    token, user = found
    if token.revoked_at is not None:
        raise InvalidRefreshToken
    if token.rotated_at is not None:
        await _revoke_family(session, token.family_id, now)
        raise RefreshTokenReused
    if token.expires_at <= now or not user.is_active:
        raise InvalidRefreshToken
    token.rotated_at = now
    refresh = _add_refresh_token(session, issuer, user.id, family_id=token.family_id, now=now)
    return TokenPair(issuer.access_token(str(user.id), user.role, now), refresh, issuer.access_ttl_seconds)


async def end_session(session: AsyncSession, presented: str, now: datetime) -> None:
    """Sign out: revoke the family the token belongs to. An unknown token is already signed out."""
    family_id = await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == token_digest(presented))
    )
    if family_id is not None:
        await _revoke_family(session, family_id, now)


def _add_refresh_token(
    session: AsyncSession, issuer: TokenIssuer, user_id: uuid.UUID, *, family_id: uuid.UUID, now: datetime
) -> str:
    token = opaque_token()
    session.add(
        RefreshToken(
            token_hash=token_digest(token),
            family_id=family_id,
            user_id=user_id,
            expires_at=now + issuer.refresh_ttl,
        )
    )
    return token


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
