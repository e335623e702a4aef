"""``/.well-known/jwks.json``: the public keys every service verifies our tokens with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from services.user_service.domain.keys import jwks

router = APIRouter(tags=["auth"])


@router.get("/.well-known/jwks.json")
async def read_jwks(request: Request, response: Response) -> dict[str, Any]:
    # verifiers cache keys and refetch on an unknown kid, so a short cache lifetime is enough
    response.headers["Cache-Control"] = "public, max-age=300"
    return jwks(request.app.state.token_issuer.signing_key)
