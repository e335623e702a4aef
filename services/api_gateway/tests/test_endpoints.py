"""The gateway's own endpoints: /, /health, /ready, /gateway/services, /gateway/metrics, /metrics, /openapi.json, /docs."""

from __future__ import annotations

import uuid

from services.api_gateway.openapi import merge_documents
from services.api_gateway.routing import JWKS_PATH, ROUTES, RoutingTable
from services.api_gateway.tests.conftest import (
    RunningGateway,
    Upstream,
    free_port,
    gateway_settings,
    running_gateway,
)
from services.api_gateway.tests.upstream import OPENAPI_DOCUMENT
from shared.clock import FakeClock
from shared.testing.tokens import TokenFactory


async def test_index_names_the_gateway_and_its_services(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        body = (await client.get("/")).json()
    assert body["name"] == "RepitBot API gateway" and body["version"]
    assert set(body["services"]) == set(ROUTES.values())
    assert body["services"]["user-service"] == {
        "routes": ["/api/v1/auth", "/api/v1/users", JWKS_PATH],
        "status": "up",
    }
    assert body["services"]["lesson-service"]["status"] == "not_deployed"


async def test_health_summarises_upstreams_and_ready_means_routing_is_loaded(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        health = (await client.get("/health")).json()
        ready = await client.get("/ready")
    assert health["status"] == "ok" and health["service"] == "api-gateway"
    assert health["rate_limiter"] == {"backend": "redis", "redis": "healthy"}
    assert health["upstreams"]["user-service"] == {"status": "up", "instances": 1, "healthy_instances": 1}
    assert health["upstreams"]["payment-service"]["status"] == "not_deployed"
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"routing": "healthy", "rate_limiter": "healthy"}


async def test_services_show_instances_health_breakers_checks_and_latency(
    gateway: RunningGateway, upstream: Upstream
) -> None:
    async with gateway.client() as client:
        services = (await client.get("/gateway/services")).json()["services"]
    user_service = services["user-service"]
    assert user_service["status"] == "up"
    assert user_service["configured"] == [upstream.url.removeprefix("http://")]
    [instance] = user_service["instances"]
    assert instance["url"] == upstream.url and instance["healthy"] is True
    assert instance["breaker"]["state"] == "closed"
    assert instance["last_check"] and instance["latency_ms"] >= 0 and instance["outstanding"] == 0
    assert services["lesson-service"] == {
        "routes": ["/api/v1/lessons"],
        "status": "not_deployed",
        "configured": [],
        "instances": [],
    }


async def test_metrics_as_json_and_for_prometheus(gateway: RunningGateway, tokens: TokenFactory) -> None:
    async with gateway.client(headers=tokens.auth_header(uuid.uuid4(), "tutor")) as client:
        before = (await client.get("/gateway/metrics")).json()
        await client.get("/api/v1/users/me")
        await client.get("/api/v1/lessons")  # not deployed
        after = (await client.get("/gateway/metrics")).json()
        prometheus = (await client.get("/metrics")).text
    assert set(after) == {"circuit_breakers", "rate_limit", "upstreams"}
    [breaker] = [b for b in after["circuit_breakers"].values() if b["service"] == "user-service"]
    assert breaker["state"] == "closed"
    assert after["rate_limit"]["backend"] == "redis"
    allowed = after["rate_limit"]["decisions"]["redis"]["allowed"]
    assert allowed - before["rate_limit"]["decisions"].get("redis", {}).get("allowed", 0) == 2
    users, lessons = after["upstreams"]["user-service"], after["upstreams"]["lesson-service"]
    assert users["requests"]["ok"] - before["upstreams"]["user-service"]["requests"].get("ok", 0) == 1
    assert lessons["rejected"]["not_deployed"] >= 1
    for series in (
        'http_requests_total{method="GET",route="/api/v1/users",service="api-gateway",status="200"}',
        "gateway_upstream_requests_total",
        "gateway_upstream_response_seconds_bucket",
        "gateway_rate_limit_decisions_total",
        "gateway_circuit_breaker_state",
        "gateway_upstream_instance_healthy",
        "gateway_rate_limiter_redis 1.0",
    ):
        assert series in prometheus, series


async def test_the_merged_document_has_every_service_path_and_survives_a_service_down(
    upstream: Upstream, clock: FakeClock
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = gateway_settings(
        {"user-service": [upstream.url], "lesson-service": [dead]}, jwks_url=upstream.url + JWKS_PATH
    )
    async with running_gateway(settings, clock=clock) as gateway, gateway.client() as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert "/api/v1/users/me" in document["paths"] and "/api/v1/auth/login" in document["paths"]
    assert "/internal/links/{a}/{b}" not in document["paths"]  # never routed, never documented
    assert "/health" in document["paths"] and "/gateway/services" in document["paths"]  # the gateway's own
    assert document["x-services"]["user-service"] == "current"
    assert document["x-services"]["lesson-service"] == "unavailable"
    assert document["x-services"]["payment-service"] == "not_deployed"
    assert document["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in document["paths"]["/api/v1/auth/login"]["post"]
    assert document["components"]["schemas"]["Profile"]
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_components_that_clash_are_renamed_after_their_service() -> None:
    routing = RoutingTable.from_settings(gateway_settings({}, jwks_url="http://x" + JWKS_PATH))
    lessons = {
        "paths": {
            "/api/v1/lessons": {
                "post": {"responses": {"201": {"$ref": "#/components/responses/Created"}}},
                "get": {"parameters": [{"$ref": "#/components/schemas/Profile"}]},
            },
            "/api/v1/users/me": {"get": {}},  # not lesson-service's path: left out
        },
        "components": {
            "schemas": {"Profile": {"type": "string"}, "Shared": {"type": "integer"}},
            "responses": {"Created": {"description": "made"}},
        },
    }
    users = {
        **OPENAPI_DOCUMENT,
        "components": {"schemas": {**OPENAPI_DOCUMENT["components"]["schemas"], "Shared": {"type": "integer"}}},
    }
    merged = merge_documents(
        {"openapi": "3.1.0", "info": {}, "paths": {}}, {"user-service": users, "lesson-service": lessons}, routing
    )
    schemas = merged["components"]["schemas"]
    assert schemas["Profile"] == OPENAPI_DOCUMENT["components"]["schemas"]["Profile"]
    assert schemas["LessonServiceProfile"] == {"type": "string"}
    assert schemas["Shared"] == {"type": "integer"} and "LessonServiceShared" not in schemas  # equal: shared
    lessons_get = merged["paths"]["/api/v1/lessons"]["get"]
    assert lessons_get["parameters"] == [{"$ref": "#/components/schemas/LessonServiceProfile"}]
    assert merged["paths"]["/api/v1/users/me"]["get"]["summary"] == "Me"
    assert merged["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
