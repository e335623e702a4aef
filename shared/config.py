"""Settings: pydantic-settings from the environment, secrets also from ``<NAME>_FILE``.

Every service's settings class subclasses :class:`ServiceSettings`. A field whose
``json_schema_extra`` says ``secret`` must be given a real value when
``ENV=production``: a missing value or a development default (``dev-...``) stops
the service at start-up instead of running with a key everyone knows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEV_SECRET_PREFIX = "dev-"


def secret(default: str | None = None, **kwargs: Any) -> Any:
    """A settings field that must not keep a development value in production."""
    return Field(default, json_schema_extra={"secret": True}, **kwargs)


class FileSecretsSource(PydanticBaseSettingsSource):
    """``FOO_FILE=/run/secrets/foo`` supplies ``FOO`` (compose ``secrets:``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        return Path(path).read_text().strip(), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    env: Literal["development", "test", "production"] = "development"
    service_name: str = "service"
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    # False for a service that owns no database (the gateway, the bot): production does not ask for one
    uses_database: ClassVar[bool] = True
    database_url: str | None = secret(None)
    # eight services share one PostgreSQL (max_connections 100 by default): 8 x (5 + 5, plus the outbox
    # relay's connection and its LISTEN connection) = 96 fits
    db_pool_size: int = 5
    db_max_overflow: int = 5

    rabbitmq_url: str = secret("amqp://guest:guest@127.0.0.1:5672/")
    events_exchange: str = "repitbot.events"
    event_delivery_limit: int = 5  # attempts before an event goes to the dead-letter queue
    # events waiting together are applied in one transaction, up to this many (shared/events/consumer.py);
    # the broker hands over twice as many, so the next batch is already here when one commits
    event_batch_size: int = 50
    # a consumer that is busy (deliveries arrived while it applied the last batch) waits up to this long
    # for a full batch before its next one; an idle consumer never waits (0: never)
    event_linger_seconds: float = Field(0.0, ge=0, le=1)
    publish_timeout_seconds: float = 5.0
    outbox_poll_seconds: float = 5.0  # fallback when a LISTEN/NOTIFY wake-up is missed
    # shared/housekeeping.py: how long the shared tables keep a row, and how often each instance deletes
    # the older ones (0: never; tests run the pass themselves)
    housekeeping_interval_seconds: float = 3600.0
    outbox_retention_days: float = Field(7.0, gt=0)
    inbox_retention_days: float = Field(30.0, gt=0)
    idempotency_retention_days: float = Field(7.0, gt=0)

    redis_url: str = "redis://127.0.0.1:6379/0"

    jwt_issuer: str = "repitbot-user-service"
    jwt_audience: str = "repitbot"
    user_service_url: str = "http://127.0.0.1:8001"
    jwks_url: str | None = None  # defaults to <user_service_url>/.well-known/jwks.json

    # this service's own identity for /internal calls (client credentials at user-service)
    service_client_id: str | None = None
    service_client_secret: str | None = secret(None)

    max_request_body_bytes: int = 1_048_576

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, FileSecretsSource(settings_cls), dotenv_settings)

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.user_service_url.rstrip('/')}/.well-known/jwks.json"

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> ServiceSettings:
        if self.env != "production":
            return self
        weak = []
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra
            if not (isinstance(extra, dict) and extra.get("secret")):
                continue
            if name == "database_url" and not self.uses_database:
                continue
            value = getattr(self, name)
            if value is None or is_development_secret(str(value)):
                weak.append(name.upper())
        if weak:
            raise ValueError("ENV=production refuses development or missing secrets: " + ", ".join(sorted(weak)))
        return self


def is_development_secret(value: str) -> bool:
    return (
        value.startswith(DEV_SECRET_PREFIX)
        or ":guest@" in value  # RabbitMQ's default account
        or "changeme" in value.lower()
    )
