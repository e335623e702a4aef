"""The gateway's working parts, shared by the proxy and the gateway's own endpoints.

Built once per process from the settings (no I/O); :meth:`Gateway.start` opens the
upstream session and runs the first discovery round, :meth:`Gateway.stop` closes
everything. Time comes from the injected clock (breakers, limits, token expiry,
caches) and host names from the injected resolver, so tests control both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from services.api_gateway.discovery import Resolver, ServiceRegistry, system_resolver
from services.api_gateway.limiter import RateLimiter
from services.api_gateway.metrics import GATEWAY_STATE
from services.api_gateway.openapi import OpenApiAggregator
from services.api_gateway.routing import RoutingTable
from services.api_gateway.settings import GatewaySettings
from services.api_gateway.upstream import new_upstream_session
from shared.auth.jwt import JwksClient, TokenVerifier
from shared.breaker import CircuitBreaker
from shared.clock import SYSTEM_CLOCK, Clock

HEALTHY, UNHEALTHY = "healthy", "unhealthy"


class Gateway:
    registry: ServiceRegistry
    session: aiohttp.ClientSession  # from start() on

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        resolver: Resolver = system_resolver,
        gateway_document: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.routing = RoutingTable.from_settings(settings)
        self.registry = ServiceRegistry(
            settings.upstream_urls,
            breaker_factory=self._instance_breaker,
            clock=clock,
            resolver=resolver,
            health_path=settings.health_check_path,
            health_timeout=settings.health_check_timeout_seconds,
        )
        # No retries inside redis-py: a request must not wait for a dead Redis, the limiter falls back.
        redis_timeout = settings.rate_limit_redis_timeout_seconds
        self.redis = Redis.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            socket_timeout=redis_timeout,
            socket_connect_timeout=redis_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.limiter = RateLimiter(
            self.redis,
            window_seconds=settings.rate_limit_window_seconds,
            clock=clock,
            redis_retry_seconds=settings.rate_limit_redis_retry_seconds,
            key_prefix=settings.rate_limit_key_prefix,
        )
        self.verifier = TokenVerifier(
            JwksClient(settings.resolved_jwks_url, clock=clock),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            clock=clock,
        )
        self.openapi = OpenApiAggregator(
            self.routing,
            self.registry,
            clock=clock,
            cache_seconds=settings.openapi_cache_seconds,
            gateway_document=gateway_document,
        )
        self.started = False

    def _instance_breaker(self, name: str) -> CircuitBreaker:
        return CircuitBreaker(
            name,
            failure_threshold=self.settings.breaker_failure_threshold,
            reset_timeout=self.settings.breaker_reset_seconds,
            half_open_max_calls=self.settings.breaker_half_open_probes,
            clock=self.clock,
        )

    async def start(self) -> None:
        self.session = new_upstream_session(self.settings)
        await self.registry.start(self.session, self.settings.health_check_interval_seconds)
        GATEWAY_STATE.track(self)
        self.started = True

    async def stop(self) -> None:
        GATEWAY_STATE.forget(self)
        await self.registry.stop()
        if hasattr(self, "session"):  # also after a start that failed half-way
            await self.session.close()
        await self.redis.aclose()

    # --- readiness (/ready) and health (/health) --------------------------------------------

    async def routing_ready(self) -> str:
        """Ready once the routing table is loaded and every service's instances were looked up once."""
        return HEALTHY if self.started and self.registry.rounds > 0 else UNHEALTHY

    async def rate_limiter_ready(self) -> str:
        """Always ready: without Redis the local per-instance limit applies (/health says which)."""
        return HEALTHY

    async def redis_state(self) -> str:
        try:
            await self.redis.ping()
        except (RedisError, OSError):
            return UNHEALTHY
        return HEALTHY

    async def health(self) -> dict[str, Any]:
        redis = await self.redis_state()
        upstreams = {}
        for service in self.routing.services():
            pool = self.registry.pool(service)
            if pool is None:
                upstreams[service] = {"status": "not_deployed", "instances": 0, "healthy_instances": 0}
            else:
                upstreams[service] = {
                    "status": pool.status,
                    "instances": len(pool.instances),
                    "healthy_instances": len(pool.healthy_instances()),
                }
        limiter = {"backend": self.limiter.backend, "redis": redis}
        deployed = [summary for summary in upstreams.values() if summary["status"] != "not_deployed"]
        degraded = limiter["backend"] != "redis" or redis != HEALTHY or any(s["status"] != "up" for s in deployed)
        return {
            "status": "degraded" if degraded else "ok",
            "service": self.settings.service_name,
            "version": self.settings.version,
            "rate_limiter": limiter,
            "upstreams": upstreams,
        }
