"""Who is calling: FastAPI dependencies built on the verified token, and nothing else.

    @router.get("/me")
    async def me(caller: CurrentUser): ...

    @router.post("/invites")
    async def invite(caller: Annotated[Caller, Depends(require_roles("tutor"))]): ...

    @router.get("/internal/links/{principal_id}/{student_id}")
    async def link(caller: ServiceCaller): ...

The caller comes only from the ``Authorization: Bearer`` token verified by
``request.app.state.verifier``; headers such as ``X-User-Id`` are never read.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shared import context
from shared.auth.jwt import ROLES, Claims
from shared.errors import Forbidden, Unauthorized


@dataclass(frozen=True, slots=True)
class Caller:
    id: str  # a user's UUID as text; a service account's client id
    role: str
    claims: Claims

    @property
    def is_service(self) -> bool:
        return self.role == "service"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer <token>``; None when the header is absent."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Expected 'Authorization: Bearer <token>'")
    return token


async def authenticate(request: Request) -> Caller | None:
    """The verified caller, or None when the request carries no credentials.

    Verified once per request (remembered on ``request.state``); also used by the
    idempotency wrapper, which needs the caller before the route's dependencies run.
    """
    known: Caller | None = getattr(request.state, "caller", None)
    if known is not None:
        return known
    token = bearer_token(request)
    if token is None:
        return None
    claims = await request.app.state.verifier.verify(token)
    caller = Caller(id=claims.sub, role=claims.role, claims=claims)
    request.state.caller = caller
    context.user_id.set(caller.id)  # logs of this request name the user
    return caller


async def get_caller(request: Request) -> Caller:
    caller = await authenticate(request)
    if caller is None:
        raise Unauthorized()
    return caller


CurrentUser = Annotated[Caller, Depends(get_caller)]


def require_roles(*roles: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency admitting only callers with one of ``roles`` (403 otherwise)."""
    unknown = set(roles) - ROLES
    if not roles or unknown:
        raise ValueError(f"require_roles needs known roles, got {sorted(unknown) or 'none'}")
    allowed = frozenset(roles)

    async def caller_with_role(caller: CurrentUser) -> Caller:
        if caller.role not in allowed:
            raise Forbidden("This action is not allowed for your role", details={"allowed_roles": sorted(allowed)})
        return caller

    return caller_with_role


ServiceCaller = Annotated[Caller, Depends(require_roles("service"))]


def user_id_of(caller: Caller) -> uuid.UUID:
    """A person's token names their user id; anything else in ``sub`` is not one of our tokens."""
    try:
        return uuid.UUID(caller.id)
    except ValueError:
        raise Unauthorized("Invalid token", details={"reason": "subject is not a user id"}) from None


async def _tutor_id(caller: Annotated[Caller, Depends(require_roles("tutor"))]) -> uuid.UUID:
    return user_id_of(caller)


# the calling tutor's user id (403 for any other role)
TutorId = Annotated[uuid.UUID, Depends(_tutor_id)]


async def _person(caller: Annotated[Caller, Depends(require_roles("tutor", "student", "parent", "admin"))]) -> Caller:
    user_id_of(caller)
    return caller


# a person (not a service account) whose token names a user id
Person = Annotated[Caller, Depends(_person)]
