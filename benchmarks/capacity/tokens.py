"""Access tokens for the seeded users, signed the way user-service signs them, without logging 5,000 users in.

user-service's own :class:`TokenIssuer` with the key the fleet's user-service signs with
(``JWT_PRIVATE_KEY`` from its environment, else the development key it created under
``var/dev-secrets/``) and the issuer and audience it was given: the gateway and every service
accept these tokens exactly as they accept a login's. Their lifetime is chosen here (user-service
issues at most an hour): long enough for the whole run.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from services.user_service.domain.keys import load_signing_key
from services.user_service.domain.tokens import TokenIssuer
from shared.seeding import World

TOKEN_LIFETIME = timedelta(hours=1)


def token_issuer(user_service_env: Mapping[str, str], *, lifetime: timedelta = TOKEN_LIFETIME) -> TokenIssuer:
    """The issuer of the fleet's user-service (its environment as the runner started it)."""
    return TokenIssuer(
        signing_key=load_signing_key(user_service_env.get("JWT_PRIVATE_KEY")),
        issuer=user_service_env["JWT_ISSUER"],
        audience=user_service_env["JWT_AUDIENCE"],
        access_ttl=lifetime,
        refresh_ttl=lifetime,
    )


def mint_tokens(world: World, issuer: TokenIssuer, *, now: datetime) -> dict[uuid.UUID, str]:
    """An access token for every person of ``world``, by id."""
    return {person.id: issuer.access_token(str(person.id), person.role, now) for person in world.people}
