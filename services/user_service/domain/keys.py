"""The RSA key that signs every token, its ``kid`` and its JWKS entry (CONTRACTS.md "Tokens").

Production takes the key from ``JWT_PRIVATE_KEY`` (or ``JWT_PRIVATE_KEY_FILE``).
Elsewhere, when it is unset, one development key is generated the first time and
kept at ``var/dev-secrets/jwt_private.pem`` so every process and restart signs
with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose.backends.base import Key
from jose.constants import ALGORITHMS
from jose.jwk import RSAKey

from shared.auth.keys import new_private_key_pem, public_jwk
from shared.files import create_once

ALGORITHM = ALGORITHMS.RS256
REPO_ROOT = Path(__file__).resolve().parents[3]
DEV_KEY_PATH = REPO_ROOT / "var" / "dev-secrets" / "jwt_private.pem"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Key = field(repr=False)  # prepared once: python-jose would re-parse a PEM on every signature
    public_jwk: dict[str, str]


def signing_key_from_pem(pem: str | bytes) -> SigningKey:
    raw = pem.encode() if isinstance(pem, str) else pem
    private_key = serialization.load_pem_private_key(raw, password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("the JWT signing key must be an RSA key")
    public = public_jwk(private_key)
    return SigningKey(kid=public["kid"], private=RSAKey(private_key, ALGORITHM), public_jwk=public)


def jwks(*keys: SigningKey) -> dict[str, list[dict[str, str]]]:
    return {"keys": [key.public_jwk for key in keys]}


def load_signing_key(configured_pem: str | None, dev_key_path: Path = DEV_KEY_PATH) -> SigningKey:
    """The configured key, else the development key file (created on first use). Blocking: call from a thread."""
    if configured_pem:
        return signing_key_from_pem(configured_pem)
    return signing_key_from_pem(load_or_create_dev_key(dev_key_path))


def load_or_create_dev_key(path: Path) -> bytes:
    """Read the development key, generating it if absent; safe when several threads or processes start at once."""
    return create_once(path, new_private_key_pem)
