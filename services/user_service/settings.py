"""user-service settings: the common ones plus keys, token lifetimes, invites and service accounts (CONTRACTS.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.config import ServiceSettings, is_development_secret, secret

MIN_RSA_KEY_BITS = 2048
MIN_PRODUCTION_CLIENT_SECRET_LENGTH = 16


class UserServiceSettings(ServiceSettings):
    service_name: str = "user-service"
    port: int = 8001

    # PEM of the RSA key that signs every token. Unset outside production: a development
    # key is generated once under var/dev-secrets/ (see domain/keys.py).
    jwt_private_key: str | None = secret(None)
    access_token_ttl_seconds: int = Field(900, ge=60, le=3600)
    refresh_token_ttl_days: int = Field(30, ge=1, le=365)
    invite_ttl_hours: int = Field(72, ge=1, le=24 * 30)
    # housekeeping deletes refresh tokens and unused invites this long after they expired
    refresh_token_retention_days: int = Field(30, ge=1)
    invite_retention_days: int = Field(30, ge=1)
    bot_username: str = Field("RepitBot", pattern=r"^[A-Za-z0-9_]{1,64}$")

    # "id:secret,id:secret" -> {id: secret}; the bot and the services that call /internal.
    service_accounts: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    @property
    def access_token_ttl(self) -> timedelta:
        return timedelta(seconds=self.access_token_ttl_seconds)

    @property
    def refresh_token_ttl(self) -> timedelta:
        return timedelta(days=self.refresh_token_ttl_days)

    @property
    def invite_ttl(self) -> timedelta:
        return timedelta(hours=self.invite_ttl_hours)

    @field_validator("jwt_private_key")
    @classmethod
    def _must_be_an_rsa_private_key(cls, value: str | None) -> str | None:
        # A development placeholder is left for the production check below to name.
        if value is None or is_development_secret(value):
            return value
        value = value.replace("\\n", "\n")  # a PEM squeezed onto one line of an env file
        try:
            key = load_pem_private_key(value.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError("JWT_PRIVATE_KEY is not an unencrypted PEM private key") from exc
        if not isinstance(key, RSAPrivateKey) or key.key_size < MIN_RSA_KEY_BITS:
            raise ValueError(f"JWT_PRIVATE_KEY must be an RSA key of at least {MIN_RSA_KEY_BITS} bits")
        return value

    @field_validator("service_accounts", mode="before")
    @classmethod
    def _parse_service_accounts(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        accounts: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in value.split(","))):
            client_id, sep, client_secret = entry.partition(":")
            if not sep or not client_id.strip() or not client_secret:
                raise ValueError("SERVICE_ACCOUNTS must look like 'id:secret,id:secret'")
            accounts[client_id.strip()] = client_secret
        return accounts

    @model_validator(mode="after")
    def _refuse_weak_client_secrets_in_production(self) -> UserServiceSettings:
        if self.env != "production":
            return self
        weak = sorted(
            client_id
            for client_id, client_secret in self.service_accounts.items()
            if is_development_secret(client_secret) or len(client_secret) < MIN_PRODUCTION_CLIENT_SECRET_LENGTH
        )
        if weak:
            raise ValueError(
                "ENV=production refuses development or short SERVICE_ACCOUNTS secrets for: " + ", ".join(weak)
            )
        return self
