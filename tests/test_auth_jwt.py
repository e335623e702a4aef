"""Token verification and the caller dependencies, against a JWKS served over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from shared import context
from shared.auth.deps import Caller, CurrentUser, ServiceCaller, require_roles
from shared.auth.jwt import JwksClient, StaticKeySource, TokenVerifier, access_token_claims
from shared.clock import FakeClock
from shared.errors import ServiceUnavailable, Unauthorized
from shared.testing.tokens import TokenFactory

# the fixtures module is also imported for its helpers: let pytest rewrite its asserts first
pytest.register_assert_rewrite("tests.auth_fixtures")
from tests.auth_fixtures import FakeUserService, LocalServer, client_for, make_test_app  # noqa: E402

pytest_plugins = ["tests.auth_fixtures"]


def jwks_verifier(user_service_url: str, tokens: TokenFactory, clock: FakeClock | None = None) -> TokenVerifier:
    jwks = JwksClient(f"{user_service_url}/.well-known/jwks.json", clock=clock or FakeClock())
    return TokenVerifier(jwks, issuer=tokens.issuer, audience=tokens.audience)


def identity_app(verifier: TokenVerifier) -> FastAPI:
    app = make_test_app(verifier=verifier)

    @app.get("/me")
    async def me(caller: CurrentUser) -> dict[str, Any]:
        return {"id": caller.id, "role": caller.role, "logged_as": context.user_id.get()}

    @app.get("/tutors-only")
    async def tutors_only(caller: Annotated[Caller, Depends(require_roles("tutor", "admin"))]) -> dict[str, str]:
        return {"id": caller.id}

    @app.get("/internal/ping")
    async def internal(caller: ServiceCaller) -> dict[str, str]:
        return {"service": caller.id}

    return app


@pytest.fixture
def app(fake_user_service: FakeUserService, tokens: TokenFactory) -> FastAPI:
    return identity_app(jwks_verifier(fake_user_service.url, tokens))


async def test_a_valid_token_gives_the_caller(app: FastAPI, tokens: TokenFactory) -> None:
    user_id = str(uuid.uuid4())
    async with client_for(app) as client:
        response = await client.get("/me", headers=tokens.auth_header(user_id, "tutor"))
    assert response.status_code == 200
    assert response.json() == {"id": user_id, "role": "tutor", "logged_as": user_id}


BAD_TOKENS: dict[str, Callable[[TokenFactory, str], str]] = {
    "alg none": lambda t, sub: t.alg_none_token(sub, "tutor"),
    "HS256 signed with the public key": lambda t, sub: t.hs256_with_public_key_token(sub, "tutor"),
    "wrong key": lambda t, sub: t.wrong_key_token(sub, "tutor"),
    "tampered payload": lambda t, sub: t.tampered_token(sub, "tutor"),
    "expired": lambda t, sub: t.expired_token(sub, "tutor"),
    "missing aud": lambda t, sub: t.missing_audience_token(sub, "tutor"),
    "wrong aud": lambda t, sub: t.wrong_audience_token(sub, "tutor"),
    "wrong iss": lambda t, sub: t.wrong_issuer_token(sub, "tutor"),
    "wrong typ": lambda t, sub: t.wrong_type_token(sub, "tutor"),
    "missing typ": lambda t, sub: t.make_token(sub, "tutor", typ=None),
    "missing exp": lambda t, sub: t.make_token(sub, "tutor", exp=None),
    "missing sub": lambda t, sub: t.make_token(sub, "tutor", sub=None),
    "missing role": lambda t, sub: t.make_token(sub, "tutor", role=None),
    "unknown role": lambda t, sub: t.make_token(sub, "superuser"),
    "garbage": lambda t, sub: "not.a.token",
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_a_bad_token_is_401_in_the_one_error_shape(app: FastAPI, tokens: TokenFactory, kind: str) -> None:
    token = BAD_TOKENS[kind](tokens, str(uuid.uuid4()))
    async with client_for(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert set(error) == {"code", "message", "details", "correlation_id"}
    assert error["correlation_id"] == response.headers["x-correlation-id"]


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer   "])
async def test_missing_or_non_bearer_credentials_are_401(app: FastAPI, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with client_for(app) as client:
        response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_an_x_user_id_header_is_never_trusted(app: FastAPI, tokens: TokenFactory) -> None:
    real, claimed = str(uuid.uuid4()), str(uuid.uuid4())
    async with client_for(app) as client:
        anonymous = await client.get("/me", headers={"X-User-Id": claimed})
        with_token = await client.get("/me", headers={**tokens.auth_header(real, "student"), "X-User-Id": claimed})
    assert anonymous.status_code == 401
    assert with_token.json()["id"] == real


async def test_roles_are_enforced_with_403(app: FastAPI, tokens: TokenFactory) -> None:
    async with client_for(app) as client:
        student = await client.get("/tutors-only", headers=tokens.auth_header(uuid.uuid4(), "student"))
        tutor = await client.get("/tutors-only", headers=tokens.auth_header(uuid.uuid4(), "tutor"))
        admin = await client.get("/tutors-only", headers=tokens.auth_header(uuid.uuid4(), "admin"))
        tutor_internal = await client.get("/internal/ping", headers=tokens.auth_header(uuid.uuid4(), "tutor"))
        bot = await client.get("/internal/ping", headers=tokens.auth_header("telegram-bot", "service"))
    assert (student.status_code, tutor.status_code, admin.status_code) == (403, 200, 200)
    assert student.json()["error"]["code"] == "forbidden"
    assert tutor_internal.status_code == 403
    assert bot.json() == {"service": "telegram-bot"}


def test_require_roles_refuses_unknown_roles() -> None:
    with pytest.raises(ValueError):
        require_roles("teacher")


async def test_an_unknown_kid_refreshes_the_jwks_once_per_interval(
    fake_user_service: FakeUserService, tokens: TokenFactory
) -> None:
    clock = FakeClock()
    verifier = jwks_verifier(fake_user_service.url, tokens, clock)
    await verifier.verify(tokens.make_token(uuid.uuid4(), "tutor"))
    assert fake_user_service.hits["jwks"] == 1

    # user-service rotates its key: the new kid is unknown to us until we refetch
    rotated = await tokens.rotated()
    fake_user_service.jwks_keys.append(rotated.public_jwk)
    clock.advance(6)  # just past the refetch interval since the first fetch
    claims = await verifier.verify(rotated.make_token("u-rotated", "tutor"))
    assert claims.sub == "u-rotated"
    assert fake_user_service.hits["jwks"] == 2

    # kids nobody published: rejected, and user-service is not asked again within the interval
    stranger = await tokens.rotated()
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await verifier.verify(stranger.make_token(uuid.uuid4(), "tutor"))
    assert fake_user_service.hits["jwks"] == 2
    clock.advance(6)
    with pytest.raises(Unauthorized):
        await verifier.verify(stranger.make_token(uuid.uuid4(), "tutor"))
    assert fake_user_service.hits["jwks"] == 3


async def test_cached_keys_are_served_while_user_service_is_down(tokens: TokenFactory) -> None:
    clock = FakeClock()
    jwks_app = FastAPI()
    jwks_app.get("/.well-known/jwks.json")(lambda: tokens.jwks)
    server = LocalServer(jwks_app).start()
    verifier = jwks_verifier(server.url, tokens, clock)
    try:
        await verifier.verify(tokens.make_token(uuid.uuid4(), "tutor"))
    finally:
        server.stop()

    clock.advance(3600)  # the cached keys are stale and user-service does not answer
    fresh_token = tokens.make_token(uuid.uuid4(), "parent")
    assert (await verifier.verify(fresh_token)).role == "parent"
    stranger = await tokens.rotated()
    with pytest.raises(Unauthorized):
        await verifier.verify(stranger.make_token(uuid.uuid4(), "tutor"))


async def test_without_any_keys_the_answer_is_503_not_401(tokens: TokenFactory) -> None:
    server = LocalServer(FastAPI()).start()
    server.stop()  # a port where nothing listens any more
    verifier = jwks_verifier(server.url, tokens)
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(tokens.make_token(uuid.uuid4(), "tutor"))


class CountingKeySource(StaticKeySource):
    lookups = 0

    async def get_key(self, kid: str) -> dict[str, Any]:
        self.lookups += 1
        return await super().get_key(kid)


async def test_a_verified_token_is_cached_until_it_expires(tokens: TokenFactory) -> None:
    clock = FakeClock()
    minted = TokenFactory(tokens._private_key, tokens._rogue_key, clock=clock, ttl_seconds=900)
    keys = CountingKeySource([minted.public_jwk])
    verifier = TokenVerifier(keys, issuer=minted.issuer, audience=minted.audience, clock=clock)
    token = minted.make_token(uuid.uuid4(), "tutor")
    for _ in range(3):
        await verifier.verify(token)
    assert keys.lookups == 1

    clock.advance(900 + 60)  # past exp and the leeway
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_the_verification_cache_is_bounded(tokens: TokenFactory) -> None:
    verifier = TokenVerifier(tokens.key_source, issuer=tokens.issuer, audience=tokens.audience, cache_size=3)
    for _ in range(5):
        await verifier.verify(tokens.make_token(uuid.uuid4(), "tutor"))
    assert len(verifier._verified) == 3


def test_access_token_claims_are_the_contracts_set() -> None:
    issued_at = datetime(2026, 3, 2, 15, 0, 0, 900000, tzinfo=UTC)

    def claims() -> dict[str, Any]:
        ttl = timedelta(minutes=15)
        return access_token_claims(
            "telegram-bot", "service", issuer="iss", audience="aud", issued_at=issued_at, ttl=ttl
        )

    first, second = claims(), claims()
    assert len(first["jti"]) == 32 and first.pop("jti") != second.pop("jti")
    iat = int(issued_at.timestamp())
    assert first == {
        "sub": "telegram-bot", "role": "service", "iss": "iss", "aud": "aud", "iat": iat, "exp": iat + 900, "typ": "access",
    }  # fmt: skip
