"""Which service answers a path, and each route's limits (DESIGN.md §3).

``ROUTES`` is the one table: ``/api/v1/<prefix>/...`` goes to the named service.
It lists every service of the design, deployed or not: a route whose service has
no configured instance answers 503 (see docs/decisions/0007-api-gateway.md), so
a new service needs no gateway change beyond its instances' URLs — and
tests/test_fleet_consistency.py fails if a service in ``shared/fleet.py`` has no
line here.

Only ``/api/v1/...`` and ``/.well-known/jwks.json`` are proxied; ``/internal/...``
and everything else never leave the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from services.api_gateway.settings import GatewaySettings

API_PREFIX = "/api/v1/"
JWKS_PATH = "/.well-known/jwks.json"
USER_SERVICE = "user-service"

ROUTES: dict[str, str] = {
    "auth": USER_SERVICE,
    "users": USER_SERVICE,
    "lessons": "lesson-service",
    "homework": "homework-service",
    "payments": "payment-service",
    "materials": "material-service",
    "notifications": "notification-service",
    "analytics": "analytics-service",
    "students": "student-service",
}

# Paths that need no access token. user-service guards /auth/token and /auth/telegram itself;
# logout carries its credential (the refresh token) in the body, like refresh.
PUBLIC_PATHS = frozenset(
    {
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/token",
        "/api/v1/auth/telegram",
        JWKS_PATH,
        # lesson-service's iCalendar feed: phone calendars cannot send a bearer token; the secret
        # token in its query is the credential, checked by lesson-service (api/calendar.py)
        "/api/v1/lessons/calendar.ics",
    }
)

MIB = 1024 * 1024
# What a route has unless ROUTE_POLICIES says otherwise: materials carry files.
ROUTE_DEFAULTS: dict[str, dict[str, Any]] = {
    "materials": {"max_body_bytes": 50 * MIB, "timeout_seconds": 120.0},
}
SHARED_LIMIT_GROUP = "api"  # routes without a rate limit of their own count together


def url_variable(service: str) -> str:
    """The environment variable naming a service's address: user-service → USER_SERVICE_URL."""
    return service.replace("-", "_").upper() + "_URL"


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str  # "users"; "" for the JWKS route
    service: str
    path: str  # "/api/v1/users": the label of this route's requests in metrics and logs
    max_body_bytes: int
    timeout: aiohttp.ClientTimeout
    rate_limit: int  # requests per window for a user, or an anonymous client's address
    service_rate_limit: int  # for service accounts (the bot speaks for every Telegram user)
    limit_group: str  # requests to routes of one group count together


class RoutingTable:
    def __init__(self, routes: Iterable[Route], jwks_route: Route) -> None:
        self._by_prefix = {route.prefix: route for route in routes}
        self.jwks_route = jwks_route

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RoutingTable:
        def route(prefix: str, service: str, path: str) -> Route:
            configured = settings.route_policies.get(prefix)
            policy = {
                **ROUTE_DEFAULTS.get(prefix, {}),
                **(configured.model_dump(exclude_none=True) if configured else {}),
            }
            own_limit = "rate_limit" in policy or "service_rate_limit" in policy
            return Route(
                prefix=prefix,
                service=service,
                path=path,
                max_body_bytes=policy.get("max_body_bytes", settings.max_request_body_bytes),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=settings.upstream_connect_timeout_seconds,
                    sock_read=policy.get("timeout_seconds", settings.upstream_timeout_seconds),
                ),
                rate_limit=policy.get("rate_limit", settings.rate_limit_requests),
                service_rate_limit=policy.get("service_rate_limit", settings.service_rate_limit_requests),
                limit_group=prefix if own_limit else SHARED_LIMIT_GROUP,
            )

        routes = [route(prefix, service, API_PREFIX + prefix) for prefix, service in ROUTES.items()]
        return cls(routes, route("", USER_SERVICE, JWKS_PATH))

    def match(self, path: str) -> Route | None:
        """The route for a request path; None for a path the gateway does not proxy."""
        if path.startswith(API_PREFIX):
            return self._by_prefix.get(path[len(API_PREFIX) :].partition("/")[0])
        if path == JWKS_PATH:
            return self.jwks_route
        return None

    @staticmethod
    def is_public(path: str) -> bool:
        return path in PUBLIC_PATHS

    @property
    def routes(self) -> tuple[Route, ...]:
        return (*self._by_prefix.values(), self.jwks_route)

    def services(self) -> list[str]:
        return list(dict.fromkeys(route.service for route in self.routes))

    def paths_of(self, service: str) -> list[str]:
        return [route.path for route in self.routes if route.service == service]
