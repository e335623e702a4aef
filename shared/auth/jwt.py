"""Access-token verification, once for the whole fleet (DESIGN.md §4, docs/CONTRACTS.md "Tokens").

- :class:`TokenVerifier` checks an RS256 signature against a key found by the
  token's ``kid``, then the claims: ``exp``, ``iss``, ``aud``, ``sub``, ``role``
  must be present (python-jose lets a token *without* ``aud`` pass its audience
  check, so presence is checked here) and ``typ`` must be ``access``. The
  algorithm list is fixed in code and never read from the token, which rules
  out ``alg: none`` and an HS256 token "signed" with our public key.
- Keys come from a :class:`KeySource`: :class:`JwksClient` fetches user-service's
  JWKS over HTTP; user-service itself plugs in :class:`StaticKeySource` with its
  own public keys.
- A successful verification is cached per token until the token expires
  (bounded LRU), so a client's hot path pays for one signature check per token.
  The price: a token stays accepted until its ``exp`` (≤ 15 min) even if its key
  is withdrawn from the JWKS meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from jose import jwk, jwt
from jose.exceptions import JOSEError

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256",)  # fixed here; the token's header never chooses
ROLES = frozenset({"tutor", "student", "parent", "admin", "service"})
REQUIRED_CLAIMS = ("sub", "role", "iss", "aud", "exp")
ACCESS_TOKEN_TYPE = "access"


def access_token_claims(
    subject: str, role: str, *, issuer: str, audience: str, issued_at: datetime, ttl: timedelta
) -> dict[str, Any]:
    """The claims of an access token, as user-service issues them and :class:`TokenVerifier` checks them."""
    return {
        "sub": subject,
        "role": role,
        "iss": issuer,
        "aud": audience,
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TOKEN_TYPE,
    }


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    role: str
    jti: str | None
    exp: int
    iat: int | None
    iss: str
    aud: str | list[str]
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, UTC)


class KeySource(Protocol):
    async def get_key(self, kid: str) -> dict[str, Any]:
        """The public JWK with this ``kid``; raises Unauthorized when there is none."""
        ...


class StaticKeySource:
    """Keys known in-process: user-service's own public keys, and tests."""

    def __init__(self, keys: Iterable[Mapping[str, Any]]) -> None:
        self._keys = {str(key["kid"]): dict(key) for key in keys}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> StaticKeySource:
        return cls(jwks["keys"])

    async def get_key(self, kid: str) -> dict[str, Any]:
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized("Invalid token", details={"reason": "unknown signing key"}) from None


class JwksClient:
    """user-service's JWKS, cached.

    - An unknown ``kid`` triggers a refetch (keys rotate), but at most one per
      ``min_refresh_interval`` so tokens with made-up kids cannot hammer user-service.
      (So user-service should publish a new key a little before signing with it.)
    - The keys are refetched after ``max_age`` so a withdrawn key stops working.
    - While user-service is down the cached keys keep being served.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        http: httpx.AsyncClient | None = None,
        min_refresh_interval: float = 5.0,
        max_age: float = 600.0,
        timeout: float = 3.0,
    ) -> None:
        self.url = url
        self._clock = clock
        self._http = http
        self._min_refresh_interval = min_refresh_interval
        self._max_age = max_age
        self._timeout = timeout
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetch_count = 0  # attempts, for tests and metrics

    async def get_key(self, kid: str) -> dict[str, Any]:
        key = self._keys.get(kid)
        if key is not None and (not self._is_stale() or self._lock.locked()):
            return key  # fresh, or stale but already being refreshed: no one waits for a slow fetch
        async with self._lock:  # concurrent misses share one fetch
            if self._keys.get(kid) is None or self._is_stale():
                await self._refresh_if_allowed()
            key = self._keys.get(kid)
        if key is None:
            if self._fetched_at is None:  # never had keys: we cannot judge the token at all
                raise ServiceUnavailable("Token keys are unavailable, try again", retry_after=5)
            raise Unauthorized("Invalid token", details={"reason": "unknown signing key"})
        return key

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock.monotonic() - self._fetched_at >= self._max_age

    async def _refresh_if_allowed(self) -> None:
        now = self._clock.monotonic()
        if self._attempted_at is not None and now - self._attempted_at < self._min_refresh_interval:
            return
        self._attempted_at = now
        self.fetch_count += 1
        try:
            keys = await self._fetch()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("JWKS fetch failed, serving %d cached keys: %s", len(self._keys), exc, extra={"url": self.url})
            return
        self._keys = keys
        self._fetched_at = now

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        if self._http is not None:
            response = await self._http.get(self.url, timeout=self._timeout)
        else:  # fetches are rare: a short-lived client needs no lifecycle management
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(self.url)
        response.raise_for_status()
        keys = {
            str(key["kid"]): key
            for key in response.json()["keys"]
            if key.get("kty") == "RSA" and key.get("use", "sig") == "sig" and key.get("alg", "RS256") in ALGORITHMS
        }
        if not keys:
            raise ValueError("the JWKS holds no RS256 signing key")
        return keys


class TokenVerifier:
    def __init__(
        self,
        key_source: KeySource,
        *,
        issuer: str,
        audience: str,
        clock: Clock = SYSTEM_CLOCK,
        leeway_seconds: int = 30,
        cache_size: int = 10_000,
    ) -> None:
        self._keys = key_source
        self.issuer = issuer
        self.audience = audience
        self._clock = clock
        self._leeway = leeway_seconds
        self._cache_size = cache_size
        self._verified: OrderedDict[str, Claims] = OrderedDict()

    async def verify(self, token: str) -> Claims:
        """The token's claims if it is a valid access token for us; raises Unauthorized otherwise."""
        cached = self._verified.get(token)
        if cached is not None:
            if not self._expired(cached.exp):
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]
        claims = await self._verify_uncached(token)
        self._remember(token, claims)
        return claims

    async def _verify_uncached(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise _invalid("malformed token") from None
        if header.get("alg") not in ALGORITHMS:
            raise _invalid("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid("no key id")
        public_key = await self._keys.get_key(kid)
        try:
            payload = jwt.decode(
                token,
                jwk.construct(public_key, ALGORITHMS[0]),
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                # exp and nbf are checked below on the injected clock, claim presence too
                options={"verify_exp": False, "verify_nbf": False},
            )
        except JOSEError as exc:
            raise _invalid(_reason(exc)) from None
        return self._check_claims(payload)

    def _check_claims(self, payload: dict[str, Any]) -> Claims:
        missing = [name for name in REQUIRED_CLAIMS if payload.get(name) in (None, "", [])]
        if missing:
            raise _invalid(f"missing claims: {', '.join(missing)}")
        if payload.get("typ") != ACCESS_TOKEN_TYPE:
            raise _invalid("not an access token")
        exp, iat = payload["exp"], payload.get("iat")
        if not isinstance(exp, int) or (iat is not None and not isinstance(iat, int)):
            raise _invalid("malformed time claims")
        if self._expired(exp):
            raise _invalid("token expired")
        nbf = payload.get("nbf")
        if isinstance(nbf, int) and nbf > self._clock.now().timestamp() + self._leeway:
            raise _invalid("token not yet valid")
        if payload["role"] not in ROLES or not isinstance(payload["sub"], str):
            raise _invalid("unknown role or subject")
        return Claims(
            sub=payload["sub"],
            role=payload["role"],
            jti=payload.get("jti"),
            exp=exp,
            iat=iat,
            iss=payload["iss"],
            aud=payload["aud"],
            raw=payload,
        )

    def _expired(self, exp: int) -> bool:
        return exp <= self._clock.now().timestamp() - self._leeway

    def _remember(self, token: str, claims: Claims) -> None:
        self._verified[token] = claims
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)


def _invalid(reason: str) -> Unauthorized:
    # one message for every failure; the reason helps a developer, not an attacker
    return Unauthorized("Invalid token", details={"reason": reason})


def _reason(exc: JOSEError) -> str:
    text = str(exc).lower()
    if "signature" in text:
        return "bad signature"
    if "audience" in text:
        return "wrong audience"
    if "issuer" in text:
        return "wrong issuer"
    return "invalid token"
