"""Forged and broken access tokens against the real test fleet (issue 9, "Security: JWT"; DESIGN.md §4).

Every bad token starts from a real one: a tutor registers through the gateway,
the token's claims are read without verification, then altered and re-signed
with user-service's real signing key (so the only fault is the one under test),
or signed by something else. Each is refused with 401 at the gateway — which
must not even pass it on (its upstream counters stay put) — and by a service
called directly, bypassing the gateway. A control re-signs the real claims
unchanged and must pass everywhere, so a refusal means the fault was seen, not
that the forging went wrong.

Refresh-token reuse revoking the family is proven in-process in
services/user_service/tests/test_auth.py; here it is checked through the gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from shared.auth.keys import b64url, generate_rsa_key, public_jwk
from shared.testing.accounts import PASSWORD, register
from shared.testing.fleet import TestFleet

# The gateway limits anonymous callers (and every 401) per client address. These requests come from
# an address of their own on loopback, so other modules' traffic in the same minute cannot turn a
# 401 here into a 429, nor this module's 401s eat their budget.
CLIENT_ADDRESS = "127.0.0.91"

# (service, path): through the gateway, and straight at the service that owns the route
GATEWAY_TARGETS = [("api-gateway", "/api/v1/users/me"), ("api-gateway", "/api/v1/lessons")]
DIRECT_TARGETS = [("user-service", "/api/v1/users/me"), ("lesson-service", "/api/v1/lessons")]
TARGETS = GATEWAY_TARGETS + DIRECT_TARGETS
TARGET_IDS = ["gateway-users-me", "gateway-lessons", "user-service-direct", "lesson-service-direct"]
UPSTREAM_OF = {"/api/v1/users/me": "user-service", "/api/v1/lessons": "lesson-service"}


@dataclass(frozen=True)
class RealToken:
    """A token user-service issued, taken apart, and the key that signed it."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_key: rsa.RSAPrivateKey
    rogue_key: rsa.RSAPrivateKey  # another key, for "signed by someone else under our kid"

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    def sign(self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> str:
        headers = {"kid": self.kid if kid is None else kid}
        return jwt.encode(claims, key or self.signing_key, algorithm="RS256", headers=headers)

    def with_claims(self, **changes: Any) -> dict[str, Any]:
        """The real claims with some changed; a change to None removes that claim."""
        merged = {**self.claims, **changes}
        return {name: value for name, value in merged.items() if value is not None}

    def public_pem(self, fmt: serialization.PublicFormat) -> bytes:
        return self.signing_key.public_key().public_bytes(serialization.Encoding.PEM, fmt)


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _hs256_keyed_with(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """The key-confusion attack: HMAC-SHA256 keyed with a public key, as a verifier that lets the token
    choose its algorithm would check it. (python-jose refuses to sign with a PEM as an HMAC secret.)"""
    signing_input = f"{_segment({**header, 'alg': 'HS256'})}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def _flip_signature_byte(token: str) -> str:
    """The token with one byte of its signature changed (a byte, not a base64 character at the end,
    whose low bits may be padding that decoders ignore)."""
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def _keep_signature(token: str, claims: dict[str, Any]) -> str:
    head, _, signature = token.split(".")
    return f"{head}.{_segment(claims)}.{signature}"


def _with_header(token: str, header: dict[str, Any]) -> str:
    _, body, signature = token.split(".")
    return f"{_segment(header)}.{body}.{signature}"


def _now() -> int:
    return int(time.time())


# name → how to make the bad token from the real one. The verifier's leeway is 30 s: every time
# below is an hour off so the leeway cannot decide the outcome.
ATTACKS: dict[str, Callable[[RealToken], str]] = {
    "alg-none": lambda real: f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': real.kid})}.{_segment(real.claims)}.",
    "alg-none-keeping-signature": lambda real: _with_header(
        real.sign(real.claims), {"alg": "none", "typ": "JWT", "kid": real.kid}
    ),
    "hs256-keyed-with-public-pem": lambda real: _hs256_keyed_with(
        real.public_pem(serialization.PublicFormat.SubjectPublicKeyInfo), real.header, real.claims
    ),
    "hs256-keyed-with-public-pkcs1-pem": lambda real: _hs256_keyed_with(
        real.public_pem(serialization.PublicFormat.PKCS1), real.header, real.claims
    ),
    "expired": lambda real: real.sign(real.with_claims(iat=_now() - 7200, exp=_now() - 3600)),
    "nbf-in-the-future": lambda real: real.sign(real.with_claims(nbf=_now() + 3600)),
    "missing-aud": lambda real: real.sign(real.with_claims(aud=None)),
    "wrong-aud": lambda real: real.sign(real.with_claims(aud="someone-else")),
    "wrong-iss": lambda real: real.sign(real.with_claims(iss="https://evil.example")),
    "missing-exp": lambda real: real.sign(real.with_claims(exp=None)),
    "refresh-type": lambda real: real.sign(real.with_claims(typ="refresh")),
    "signature-byte-flipped": lambda real: _flip_signature_byte(real.sign(real.claims)),
    "claim-changed-keeping-signature": lambda real: _keep_signature(
        real.sign(real.claims), real.with_claims(role="admin")
    ),
    "unknown-kid": lambda real: real.sign(real.claims, kid="no-such-key-" + real.kid[:8]),
    "no-kid": lambda real: jwt.encode(real.claims, real.signing_key, algorithm="RS256"),
    "other-rsa-key-same-kid": lambda real: real.sign(real.claims, key=real.rogue_key),
}


@pytest.fixture(scope="module")
async def gateway(fleet: TestFleet) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_ADDRESS)
    async with fleet.client("api-gateway", transport=transport) as client:
        yield client


@pytest.fixture(scope="module")
async def real(fleet: TestFleet, gateway: httpx.AsyncClient) -> RealToken:
    account = await register(gateway, "token victim")
    header = jwt.get_unverified_header(account.token)
    claims = jwt.get_unverified_claims(account.token)
    signing_key = _load_signing_key(fleet)
    async with fleet.client("user-service") as user_service:
        published = (await user_service.get("/.well-known/jwks.json")).json()["keys"]
    # the key we forge with is the one the fleet really signs and publishes with
    assert public_jwk(signing_key)["kid"] == header["kid"]
    assert header["kid"] in [key["kid"] for key in published]
    assert claims["sub"] == account.id and claims["typ"] == "access"
    return RealToken(header, claims, signing_key, generate_rsa_key())


def _load_signing_key(fleet: TestFleet) -> rsa.RSAPrivateKey:
    """user-service's key: JWT_PRIVATE_KEY when the fleet sets it, else its development key file."""
    pem = fleet.env["user-service"].get("JWT_PRIVATE_KEY")
    raw = pem.encode() if pem else (fleet.layout.secrets_dir / "jwt_private.pem").read_bytes()
    key = serialization.load_pem_private_key(raw, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


async def _get(fleet: TestFleet, gateway: httpx.AsyncClient, service: str, path: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if service == "api-gateway":
        return await gateway.get(path, headers=headers)
    async with fleet.client(service) as client:
        return await client.get(path, headers=headers)


async def _upstream_attempts(gateway: httpx.AsyncClient, service: str) -> int:
    """How many times the gateway has tried to reach ``service``, whatever the outcome."""
    metrics = (await gateway.get("/gateway/metrics")).json()
    upstream = metrics["upstreams"][service]
    return sum(upstream["requests"].values()) + sum(upstream["rejected"].values())


@pytest.mark.parametrize(("service", "path"), TARGETS, ids=TARGET_IDS)
async def test_the_real_claims_re_signed_with_the_real_key_pass(
    fleet: TestFleet, gateway: httpx.AsyncClient, real: RealToken, service: str, path: str
) -> None:
    """The control: forging works, so each refusal below is about its one fault."""
    response = await _get(fleet, gateway, service, path, real.sign(real.claims))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("service", "path"), GATEWAY_TARGETS, ids=TARGET_IDS[:2])
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_the_gateway_refuses_a_bad_token_without_passing_it_on(
    fleet: TestFleet, gateway: httpx.AsyncClient, real: RealToken, attack: str, service: str, path: str
) -> None:
    upstream = UPSTREAM_OF[path]
    before = await _upstream_attempts(gateway, upstream)
    response = await _get(fleet, gateway, service, path, ATTACKS[attack](real))
    _assert_refused(response)
    assert await _upstream_attempts(gateway, upstream) == before


@pytest.mark.parametrize(("service", "path"), DIRECT_TARGETS, ids=TARGET_IDS[2:])
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_service_called_directly_refuses_a_bad_token(
    fleet: TestFleet, gateway: httpx.AsyncClient, real: RealToken, attack: str, service: str, path: str
) -> None:
    _assert_refused(await _get(fleet, gateway, service, path, ATTACKS[attack](real)))


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and error["message"] == "Invalid token", error
    assert response.headers["www-authenticate"] == "Bearer"


async def test_reusing_a_rotated_refresh_token_through_the_gateway_revokes_the_family(
    gateway: httpx.AsyncClient,
) -> None:
    email = f"refresh-{uuid.uuid4().hex[:10]}@example.test"
    registered = await gateway.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Refresh Family"}
    )
    assert registered.status_code == 201, registered.text
    first = registered.json()["refresh_token"]

    rotated = await gateway.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first

    reused = await gateway.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "refresh_token_reused", reused.text
    # the thief's reuse also ends the legitimate holder's newer token: the whole family is revoked
    after = await gateway.post("/api/v1/auth/refresh", json={"refresh_token": second})
    assert after.status_code == 401 and after.json()["error"]["code"] == "invalid_refresh_token", after.text
