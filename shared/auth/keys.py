"""RSA keys as JWKs (RFC 7517, RFC 7638): the public JWK a signer publishes and the ``kid`` that names it.

One computation for user-service, which signs and publishes its keys at
``/.well-known/jwks.json``, and for the test token factory, so a ``kid`` means
the same key everywhere (docs/CONTRACTS.md "Tokens").
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.jwt import ALGORITHMS


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The public half as a signing JWK; its ``kid`` is the key's RFC 7638 thumbprint."""
    numbers = private_key.public_key().public_numbers()
    public = {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    return {**public, "kid": jwk_thumbprint(public), "use": "sig", "alg": ALGORITHMS[0]}


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 for an RSA JWK: SHA-256 over the required members (e, kty, n), sorted, without whitespace."""
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def b64url(data: bytes) -> str:
    """Base64url without padding, as JOSE writes binary values (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))
