"""Assemble user-service on the shared ``create_app`` (``main.py`` builds it from the environment)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from services.user_service.api import auth, internal, users, well_known
from services.user_service.domain.invites import EXPIRED_UNUSED_INVITES
from services.user_service.domain.keys import load_signing_key
from services.user_service.domain.tokens import EXPIRED_REFRESH_TOKENS, TokenIssuer
from services.user_service.settings import UserServiceSettings
from shared.app import create_app
from shared.auth.jwt import StaticKeySource, TokenVerifier
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus
from shared.housekeeping import Purge


def build_app(settings: UserServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None) -> FastAPI:
    return create_app(
        settings,
        routers=[auth.router, users.router, internal.router, well_known.router],
        on_startup=[install_signing_key],
        clock=clock,
        bus=bus,
        purges=own_purges(settings),
    )


def own_purges(settings: UserServiceSettings) -> list[Purge]:
    """What housekeeping deletes here besides the shared tables' rows (shared/housekeeping.py)."""
    return [
        Purge("refresh_tokens", EXPIRED_REFRESH_TOKENS, timedelta(days=settings.refresh_token_retention_days)),
        Purge("invites", EXPIRED_UNUSED_INVITES, timedelta(days=settings.invite_retention_days)),
    ]


async def install_signing_key(app: FastAPI) -> None:
    """Load (in development: create once) the signing key; verify our own tokens with it, not over HTTP."""
    settings: UserServiceSettings = app.state.settings
    signing_key = await asyncio.to_thread(load_signing_key, settings.jwt_private_key)  # file I/O, maybe RSA keygen
    app.state.token_issuer = TokenIssuer(
        signing_key=signing_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
    )
    app.state.verifier = TokenVerifier(
        StaticKeySource([signing_key.public_jwk]),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        clock=app.state.clock,
    )
