"""api-gateway settings: the common ones (shared/config.py) plus upstreams, limits, breakers and CORS.

Environment variables (``<NAME>_FILE`` works for each), with their defaults:

- upstreams: ``<SERVICE>_URLS`` — comma-separated base URLs of a routed service's
  instances, e.g. ``USER_SERVICE_URLS=http://a:8001,http://b:8001``; else the single
  ``<SERVICE>_URL`` the runner sets (``USER_SERVICE_URL``, ``LESSON_SERVICE_URL``...).
  A host name is re-resolved every health-check interval and each address is an
  instance (compose replicas). ``UPSTREAM_URLS`` (JSON ``{"user-service": [...]}``)
  sets them all at once.
- ``UPSTREAM_TIMEOUT_SECONDS=30`` (how long an upstream may stay silent: before its
  answer starts and between chunks), ``UPSTREAM_CONNECT_TIMEOUT_SECONDS=3``,
  ``UPSTREAM_KEEPALIVE_SECONDS=3`` (below the services' uvicorn keep-alive of 5 s, so
  the gateway never sends on a connection the upstream is closing),
  ``UPSTREAM_MAX_CONNECTIONS=1024``.
- ``HEALTH_CHECK_INTERVAL_SECONDS=5``, ``HEALTH_CHECK_TIMEOUT_SECONDS=2``,
  ``HEALTH_CHECK_PATH=/ready``.
- ``BREAKER_FAILURE_THRESHOLD=5`` (consecutive failures), ``BREAKER_RESET_SECONDS=15``,
  ``BREAKER_HALF_OPEN_PROBES=1``.
- ``RATE_LIMIT_REQUESTS=100`` per ``RATE_LIMIT_WINDOW_SECONDS=60`` per user (per
  client address when anonymous), ``SERVICE_RATE_LIMIT_REQUESTS=1000`` for service
  accounts (the bot), ``RATE_LIMIT_REDIS_TIMEOUT_SECONDS=0.25``,
  ``RATE_LIMIT_REDIS_RETRY_SECONDS=5`` (how long the local fallback is used before
  Redis is tried again), ``REDIS_MAX_CONNECTIONS=1024`` (a request beyond them is limited locally),
  ``RATE_LIMIT_KEY_PREFIX=gateway:rl:`` (the limiter's keys; deployments sharing one Redis
  database need different ones).
- ``MAX_REQUEST_BODY_BYTES=1048576`` for every route without its own limit.
- ``ROUTE_POLICIES`` — JSON, per route prefix: ``{"materials": {"max_body_bytes":
  52428800, "timeout_seconds": 120, "rate_limit": 300, "service_rate_limit": 3000}}``;
  a route with a rate limit of its own counts its requests apart from the others.
- ``CORS_ORIGINS`` — comma-separated allowed origins (none by default),
  ``CORS_MAX_AGE_SECONDS=600``.
- ``OPENAPI_CACHE_SECONDS=60`` — how long the merged ``/openapi.json`` is reused.
- ``JWKS_URL`` — defaults to the first user-service URL + ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource
from yarl import URL

from services.api_gateway.routing import JWKS_PATH, ROUTES, USER_SERVICE, url_variable
from shared.config import ServiceSettings


class RoutePolicy(BaseModel):
    """One route's overrides of the defaults (``ROUTE_POLICIES``)."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int | None = Field(None, ge=0)
    timeout_seconds: float | None = Field(None, gt=0)
    rate_limit: int | None = Field(None, ge=1)
    service_rate_limit: int | None = Field(None, ge=1)


class UpstreamUrlsSource(PydanticBaseSettingsSource):
    """``upstream_urls`` from ``<SERVICE>_URLS``, else ``<SERVICE>_URL``, for every routed service."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        for service in dict.fromkeys(ROUTES.values()):
            variable = url_variable(service)
            value = os.environ.get(variable + "S") or os.environ.get(variable)
            if value:
                found[service] = value
        return {"upstream_urls": found} if found else {}


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class GatewaySettings(ServiceSettings):
    uses_database: ClassVar[bool] = False  # no database of its own
    service_name: str = "api-gateway"
    port: int = 8000

    # service name -> base URLs of its instances (http://host:port, no path)
    upstream_urls: dict[str, list[str]] = Field(default_factory=dict)
    upstream_timeout_seconds: float = Field(30.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(3.0, gt=0)
    upstream_keepalive_seconds: float = Field(3.0, gt=0)
    upstream_max_connections: int = Field(1024, ge=1)

    health_check_interval_seconds: float = Field(5.0, gt=0)
    health_check_timeout_seconds: float = Field(2.0, gt=0)
    health_check_path: str = Field("/ready", pattern=r"^/")

    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_reset_seconds: float = Field(15.0, ge=0)
    breaker_half_open_probes: int = Field(1, ge=1)

    rate_limit_requests: int = Field(100, ge=1)
    rate_limit_window_seconds: int = Field(60, ge=1)
    service_rate_limit_requests: int = Field(1000, ge=1)
    rate_limit_redis_timeout_seconds: float = Field(0.25, gt=0)
    rate_limit_redis_retry_seconds: float = Field(5.0, ge=0)
    redis_max_connections: int = Field(1024, ge=1)  # a request beyond it is limited locally
    rate_limit_key_prefix: str = Field("gateway:rl:", min_length=1)  # deployments sharing a Redis database differ here

    route_policies: dict[str, RoutePolicy] = Field(default_factory=dict)

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_max_age_seconds: int = Field(600, ge=0)

    openapi_cache_seconds: float = Field(60.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        common = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        return (*common, UpstreamUrlsSource(settings_cls))

    @field_validator("upstream_urls", mode="before")
    @classmethod
    def _split_url_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {service: _split_commas(urls) for service, urls in value.items()}
        return value

    @field_validator("upstream_urls")
    @classmethod
    def _only_routed_services_and_base_urls(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        routed = set(ROUTES.values())
        for service, urls in value.items():
            if service not in routed:
                raise ValueError(f"no route leads to {service!r}; routed services: {', '.join(sorted(routed))}")
            for url in urls:
                parsed = URL(url)
                if parsed.scheme not in ("http", "https") or not parsed.host or parsed.path not in ("", "/"):
                    raise ValueError(f"{service}: {url!r} is not a base URL like http://host:port")
        return value

    @field_validator("route_policies")
    @classmethod
    def _known_prefixes(cls, value: dict[str, RoutePolicy]) -> dict[str, RoutePolicy]:
        unknown = set(value) - set(ROUTES)
        if unknown:
            raise ValueError(f"ROUTE_POLICIES names unknown routes {sorted(unknown)}; routes: {', '.join(ROUTES)}")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _split_commas(value)

    @model_validator(mode="after")
    def _user_service_falls_back_to_its_url(self) -> GatewaySettings:
        if not self.upstream_urls.get(USER_SERVICE):
            self.upstream_urls[USER_SERVICE] = [self.user_service_url]
        return self

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or self.upstream_urls[USER_SERVICE][0].rstrip("/") + JWKS_PATH
