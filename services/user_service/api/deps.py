"""What user-service routes need besides a session and the time: the token issuer, its settings, who is calling."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.user_service.domain.service_accounts import BOT_CLIENT_ID
from services.user_service.domain.tokens import TokenIssuer
from services.user_service.settings import UserServiceSettings
from shared.auth.deps import Caller, ServiceCaller, require_roles, user_id_of
from shared.errors import Forbidden


async def _issuer(request: Request) -> TokenIssuer:
    return request.app.state.token_issuer


async def _settings(request: Request) -> UserServiceSettings:
    return request.app.state.settings


Issuer = Annotated[TokenIssuer, Depends(_issuer)]
Settings = Annotated[UserServiceSettings, Depends(_settings)]


@dataclass(frozen=True)
class Person:
    """A signed-in user (not a service account), by id and role."""

    id: uuid.UUID
    role: str


def _person_with_roles(*roles: str) -> Callable[[Caller], Awaitable[Person]]:
    admitted = require_roles(*roles)

    # a default, not Annotated: with postponed annotations FastAPI could not see the local ``admitted``
    async def person(caller: Caller = Depends(admitted)) -> Person:
        return Person(id=user_id_of(caller), role=caller.role)

    return person


AnyPerson = Annotated[Person, Depends(_person_with_roles("tutor", "student", "parent", "admin"))]
Tutor = Annotated[Person, Depends(_person_with_roles("tutor"))]


async def _bot(caller: ServiceCaller) -> Caller:
    if caller.id != BOT_CLIENT_ID:
        raise Forbidden("Only the Telegram bot may sign users in by Telegram id")
    return caller


BotCaller = Annotated[Caller, Depends(_bot)]
