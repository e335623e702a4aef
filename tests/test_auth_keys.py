"""RSA public JWKs and their RFC 7638 thumbprints: one computation for the signer and the test tokens."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from shared.auth.keys import b64url, jwk_thumbprint, new_private_key_pem, private_key_pem, public_jwk

# RFC 7638 §3.1: the example key and its thumbprint
RFC_7638_KEY = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n"
        "91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC_7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_thumbprint_is_that_of_rfc_7638_and_ignores_optional_members() -> None:
    assert jwk_thumbprint(RFC_7638_KEY) == RFC_7638_THUMBPRINT


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_public_jwk_is_a_signing_key_named_by_its_thumbprint(private_key: rsa.RSAPrivateKey) -> None:
    public = public_jwk(private_key)
    assert set(public) == {"kty", "n", "e", "kid", "use", "alg"}
    assert (public["kty"], public["use"], public["alg"], public["e"]) == ("RSA", "sig", "RS256", "AQAB")
    assert public["kid"] == jwk_thumbprint(public)
    numbers = private_key.public_key().public_numbers()
    modulus = base64.urlsafe_b64decode(public["n"] + "=" * (-len(public["n"]) % 4))
    assert int.from_bytes(modulus, "big") == numbers.n and "=" not in public["n"]


def test_a_token_signed_by_the_key_verifies_with_its_public_jwk(private_key: rsa.RSAPrivateKey) -> None:
    public = public_jwk(private_key)
    token = jwt.encode({"sub": "x"}, private_key, algorithm="RS256", headers={"kid": public["kid"]})
    assert jwt.decode(token, jwk.construct(public, "RS256"), algorithms=["RS256"]) == {"sub": "x"}


def test_b64url_has_no_padding() -> None:
    assert b64url(b"\xff\xfe") == "__4" and b64url(b"") == ""


def test_a_new_key_comes_as_an_unencrypted_pkcs8_pem_of_the_size_asked() -> None:
    pem = new_private_key_pem(3072)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
    assert private_key_pem(key) == pem
