"""Settings: where the instances are, per-route policies, and what is refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.api_gateway.routing import API_PREFIX, JWKS_PATH, ROUTES, RoutingTable
from services.api_gateway.settings import GatewaySettings


@pytest.fixture(autouse=True)
def no_service_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in set(ROUTES.values()):
        variable = service.replace("-", "_").upper() + "_URL"
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable + "S", raising=False)


def test_instances_come_from_the_urls_list_else_the_single_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER_SERVICE_URLS", "http://a:8001, http://b:8001")
    monkeypatch.setenv("USER_SERVICE_URL", "http://ignored:8001")
    monkeypatch.setenv("LESSON_SERVICE_URL", "http://lesson-service:8002")
    settings = GatewaySettings()
    assert settings.upstream_urls == {
        "user-service": ["http://a:8001", "http://b:8001"],
        "lesson-service": ["http://lesson-service:8002"],
    }
    assert settings.resolved_jwks_url == "http://a:8001" + JWKS_PATH


def test_user_service_falls_back_to_the_runner_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().upstream_urls == {"user-service": ["http://127.0.0.1:8001"]}
    monkeypatch.setenv("USER_SERVICE_URL", "http://127.0.0.1:18001")
    assert GatewaySettings().upstream_urls == {"user-service": ["http://127.0.0.1:18001"]}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("USER_SERVICE_URLS", "http://a:8001/api"),
        ("USER_SERVICE_URLS", "ftp://a:8001"),
        ("UPSTREAM_URLS", '{"mystery-service": ["http://a:1"]}'),
        ("ROUTE_POLICIES", '{"lesons": {"rate_limit": 5}}'),
        ("ROUTE_POLICIES", '{"lessons": {"rate_limt": 5}}'),
        ("ROUTE_POLICIES", '{"lessons": {"max_body_bytes": -1}}'),
    ],
)
def test_a_mistake_stops_the_gateway_at_start_up(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        GatewaySettings()


def test_each_route_gets_the_defaults_or_its_own_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTE_POLICIES", '{"lessons": {"rate_limit": 30, "timeout_seconds": 5}}')
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    settings = GatewaySettings(max_request_body_bytes=2048)
    routing = RoutingTable.from_settings(settings)
    users, lessons, materials = (
        routing.match(API_PREFIX + prefix + "/x") for prefix in ("users", "lessons", "materials")
    )
    assert users and lessons and materials
    assert (users.rate_limit, users.limit_group, users.max_body_bytes) == (100, "api", 2048)
    assert (lessons.rate_limit, lessons.limit_group, lessons.timeout.sock_read) == (30, "lessons", 5)
    assert lessons.service_rate_limit == 1000
    assert materials.max_body_bytes == 50 * 1024 * 1024 and materials.limit_group == "api"
    assert routing.match("/api/v1/unknown/x") is None and routing.match("/internal/links") is None
    assert routing.match(JWKS_PATH) is routing.jwks_route
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
