"""Access tokens for tests: a real RSA key pair, good tokens, and each kind of bad one.

    tokens = await TokenFactory.create()
    verifier = TokenVerifier(tokens.key_source, issuer=tokens.issuer, audience=tokens.audience)
    headers = tokens.auth_header(tutor_id, "tutor")

A fake user-service serves ``tokens.jwks`` at ``/.well-known/jwks.json``.
Key generation is CPU work, so :meth:`TokenFactory.create` runs it in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from shared.auth.jwt import StaticKeySource, access_token_claims
from shared.auth.keys import b64url, generate_rsa_key, private_key_pem, public_jwk
from shared.clock import SYSTEM_CLOCK, Clock

DEFAULT_ISSUER = "repitbot-user-service"
DEFAULT_AUDIENCE = "repitbot"


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


class TokenFactory:
    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        rogue_key: rsa.RSAPrivateKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        clock: Clock = SYSTEM_CLOCK,
        ttl_seconds: int = 900,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._private_key = private_key
        self._rogue_key = rogue_key  # signs "wrong key" tokens under our kid
        self.public_jwk = public_jwk(private_key)
        self.kid = self.public_jwk["kid"]

    @classmethod
    async def create(cls, **options: Any) -> TokenFactory:
        key, rogue = await asyncio.gather(asyncio.to_thread(generate_rsa_key), asyncio.to_thread(generate_rsa_key))
        return cls(key, rogue, **options)

    async def rotated(self) -> TokenFactory:
        """A factory with a new signing key (a new kid) and the same issuer, audience and clock."""
        key = await asyncio.to_thread(generate_rsa_key)
        return TokenFactory(
            key,
            self._rogue_key,
            issuer=self.issuer,
            audience=self.audience,
            clock=self.clock,
            ttl_seconds=self.ttl_seconds,
        )

    # --- what a verifier needs -----------------------------------------------------

    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.public_jwk]}

    @property
    def key_source(self) -> StaticKeySource:
        return StaticKeySource([self.public_jwk])

    @property
    def private_pem(self) -> bytes:
        return private_key_pem(self._private_key)

    @property
    def public_pem(self) -> bytes:
        return self._private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    # --- good tokens -----------------------------------------------------------------

    def claims(self, sub: str | uuid.UUID, role: str, /, **overrides: Any) -> dict[str, Any]:
        """Access-token claims; an override set to None removes that claim."""
        claims = access_token_claims(
            str(sub),
            role,
            issuer=self.issuer,
            audience=self.audience,
            issued_at=self.clock.now(),
            ttl=timedelta(seconds=self.ttl_seconds),
        )
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def make_token(self, sub: str | uuid.UUID, role: str, /, **overrides: Any) -> str:
        return self._sign_rs256(self.claims(sub, role, **overrides), self._private_key)

    def auth_header(self, sub: str | uuid.UUID, role: str, /, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.make_token(sub, role, **overrides)}"}

    # --- deliberately bad tokens ---------------------------------------------------------

    def expired_token(self, sub: str | uuid.UUID, role: str) -> str:
        now = int(self.clock.now().timestamp())
        return self.make_token(sub, role, iat=now - 7200, exp=now - 3600)

    def wrong_audience_token(self, sub: str | uuid.UUID, role: str) -> str:
        return self.make_token(sub, role, aud="someone-else")

    def missing_audience_token(self, sub: str | uuid.UUID, role: str) -> str:
        return self.make_token(sub, role, aud=None)

    def wrong_issuer_token(self, sub: str | uuid.UUID, role: str) -> str:
        return self.make_token(sub, role, iss="https://evil.example")

    def wrong_type_token(self, sub: str | uuid.UUID, role: str) -> str:
        return self.make_token(sub, role, typ="refresh")

    def wrong_key_token(self, sub: str | uuid.UUID, role: str) -> str:
        """Signed by another key that claims our kid."""
        return self._sign_rs256(self.claims(sub, role), self._rogue_key)

    def alg_none_token(self, sub: str | uuid.UUID, role: str) -> str:
        return self._signing_input({"alg": "none", "typ": "JWT", "kid": self.kid}, self.claims(sub, role)) + "."

    def hs256_with_public_key_token(self, sub: str | uuid.UUID, role: str) -> str:
        """The classic key-confusion attack: HMAC keyed with our (public) PEM."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        signing_input = self._signing_input(header, self.claims(sub, role))
        signature = hmac.new(self.public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(signature)}"

    def tampered_token(self, sub: str | uuid.UUID, role: str, **changes: Any) -> str:
        """A validly signed token whose payload is then edited (by default promoted to admin)."""
        header, _, signature = self.make_token(sub, role).split(".")
        original = self.claims(sub, role)
        tampered = {**original, **(changes or {"role": "admin"})}
        return f"{header}.{b64url(_compact_json(tampered))}.{signature}"

    # --- internals ------------------------------------------------------------------------

    def _sign_rs256(self, claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    @staticmethod
    def _signing_input(header: dict[str, Any], claims: dict[str, Any]) -> str:
        return f"{b64url(_compact_json(header))}.{b64url(_compact_json(claims))}"
