"""RSA signing keys: new ones as PEM, and as JWKs (RFC 7517, RFC 7638) with the ``kid`` that names them.

One computation for user-service, which signs and publishes its keys at
``/.well-known/jwks.json``, the compose secret generator and the test token
factory, so a ``kid`` means the same key everywhere (docs/CONTRACTS.md "Tokens").
Generating a key is CPU work (tens of milliseconds): off the event loop, run it in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.jwt import ALGORITHMS


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    """The key as an unencrypted PKCS#8 PEM, the form ``JWT_PRIVATE_KEY`` takes."""
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_private_key_pem(bits: int = 2048) -> bytes:
    """A new RSA key, as PEM."""
    return private_key_pem(generate_rsa_key(bits))


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
