"""/api/v1/auth: registration, sign-in (password, Telegram, client credentials), refresh, sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.user_service.api.deps import BotCaller, Issuer, Settings
from services.user_service.api.schemas import (
    ClientCredentialsRequest,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    ServiceTokenOut,
    SessionOut,
    TelegramSignInRequest,
    TokenOut,
    UserOut,
)
from services.user_service.domain import tokens, users
from services.user_service.domain.service_accounts import client_is_authentic
from services.user_service.models import User
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import Unauthorized

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def _session_out(pair: tokens.TokenPair, user: User) -> SessionOut:
    return SessionOut(
        user=UserOut.of(user),
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


def _token_out(pair: tokens.TokenPair) -> TokenOut:
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterRequest, session: SessionDep, issuer: Issuer, now: Now) -> SessionOut:
    """A tutor without an invite; with ``invite_code``, the invite's role, linked to its tutor."""
    account = users.NewAccount(
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        timezone=body.timezone,
        language=body.language,
    )
    user = await users.register(session, account, invite_code=body.invite_code, now=now)
    return _session_out(tokens.start_session(session, issuer, user, now), user)


@router.post("/login")
async def login(body: LoginRequest, session: SessionDep, issuer: Issuer, now: Now) -> TokenOut:
    user = await users.authenticate(session, email=body.email, password=body.password)
    return _token_out(tokens.start_session(session, issuer, user, now))


@router.post("/refresh")
async def refresh(body: RefreshRequest, session: SessionDep, issuer: Issuer, now: Now) -> TokenOut:
    """A new pair for a refresh token; a rotated token presented again revokes its whole family."""
    try:
        pair = await tokens.refresh_session(session, issuer, body.refresh_token, now)
    except tokens.RefreshTokenReused:
        await session.commit()  # the revocation must outlive this failed request
        raise
    return _token_out(pair)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, session: SessionDep, now: Now) -> Response:
    """Revoke the refresh token's family (this sign-in on every device it was refreshed on)."""
    await tokens.end_session(session, body.refresh_token, now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/telegram", responses={201: {"model": SessionOut, "description": "A new user"}})
async def telegram(
    body: TelegramSignInRequest, _: BotCaller, session: SessionDep, issuer: Issuer, now: Now, response: Response
) -> SessionOut:
    """The bot signs a Telegram user in: 200 for a known user, 201 for a new one; redeems the invite."""
    outcome = await users.sign_in_with_telegram(
        session,
        telegram_id=body.telegram_id,
        full_name=body.full_name,
        language=body.language,
        invite_code=body.invite_code,
        now=now,
    )
    if outcome.created:
        response.status_code = status.HTTP_201_CREATED
    return _session_out(tokens.start_session(session, issuer, outcome.user, now), outcome.user)


@router.post("/token")
async def client_credentials(
    body: ClientCredentialsRequest, settings: Settings, issuer: Issuer, now: Now
) -> ServiceTokenOut:
    """A service account's token (role ``service``, ``sub`` = client id) for the bot and /internal calls."""
    if not client_is_authentic(settings.service_accounts, body.client_id, body.client_secret):
        raise Unauthorized("Unknown client or wrong secret", code="invalid_client")
    return ServiceTokenOut(
        access_token=issuer.access_token(body.client_id, tokens.SERVICE_ROLE, now),
        expires_in=issuer.access_ttl_seconds,
    )
