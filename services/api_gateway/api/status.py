"""What the gateway knows about itself and its upstreams (DESIGN.md §3)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter

from services.api_gateway.api.deps import GatewayDep
from services.api_gateway.metrics import (
    RATE_LIMIT_DECISIONS,
    UPSTREAM_REJECTED,
    UPSTREAM_REQUESTS,
    UPSTREAM_RETRIES,
    counter_values,
)

router = APIRouter(tags=["gateway"])
health_router = APIRouter(tags=["gateway"])  # mounted ahead of the shared liveness /health (app.py)


@router.get("/")
async def index(gateway: GatewayDep) -> dict[str, Any]:
    """The gateway's name and version, and which service answers which paths."""
    services = {}
    for service in gateway.routing.services():
        pool = gateway.registry.pool(service)
        services[service] = {
            "routes": gateway.routing.paths_of(service),
            "status": pool.status if pool is not None else "not_deployed",
        }
    return {
        "name": "RepitBot API gateway",
        "version": gateway.settings.version,
        "services": services,
        "docs": "/docs",
    }


@health_router.get("/health")
async def health(gateway: GatewayDep) -> dict[str, Any]:
    """Alive (always 200), with a summary of upstreams and where rate limits are kept."""
    return await gateway.health()


@router.get("/gateway/services")
async def services(gateway: GatewayDep) -> dict[str, Any]:
    """Each service: its routes, instances, their health, breaker state, last check and latency."""
    result: dict[str, Any] = {}
    for service in gateway.routing.services():
        pool = gateway.registry.pool(service)
        summary = pool.snapshot() if pool is not None else {"status": "not_deployed", "configured": [], "instances": []}
        result[service] = {"routes": gateway.routing.paths_of(service), **summary}
    return {"services": result}


@router.get("/gateway/metrics")
async def gateway_metrics(gateway: GatewayDep) -> dict[str, Any]:
    """Circuit breakers, rate-limit and upstream counters, as JSON (Prometheus: /metrics)."""
    breakers = {
        instance.breaker.name: {"service": pool.service, "instance": instance.address, **instance.breaker.snapshot()}
        for pool in gateway.registry.pools()
        for instance in pool.instances
    }
    decisions: dict[str, dict[str, int]] = defaultdict(dict)
    for (backend, outcome), value in counter_values(RATE_LIMIT_DECISIONS).items():
        decisions[backend][outcome] = int(value)
    upstreams: dict[str, dict[str, Any]] = {}

    def upstream(service: str) -> dict[str, Any]:
        return upstreams.setdefault(service, {"requests": {}, "rejected": {}, "retries": 0})

    for service in gateway.routing.services():
        upstream(service)
    for (service, outcome), value in counter_values(UPSTREAM_REQUESTS).items():
        upstream(service)["requests"][outcome] = int(value)
    for (service, reason), value in counter_values(UPSTREAM_REJECTED).items():
        upstream(service)["rejected"][reason] = int(value)
    for (service,), value in counter_values(UPSTREAM_RETRIES).items():
        upstream(service)["retries"] = int(value)
    return {
        "circuit_breakers": breakers,
        "rate_limit": {**gateway.limiter.snapshot(), "decisions": dict(decisions)},
        "upstreams": upstreams,
    }
