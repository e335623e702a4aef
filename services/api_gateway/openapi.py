"""``/openapi.json``: one document built from every service's own and the gateway's paths.

Each deployed service's ``/openapi.json`` is fetched from a healthy instance and
the last good copy kept, so the document survives a service being down (its
state is listed under ``x-services``). A service's paths are already the
gateway's (``/api/v1/<resource>/...``), so nothing is rewritten; a path the gateway
does not route to that service (``/internal/...``, ``/health``, another
service's prefix) is left out. Components with the same name and different
content in two services are renamed after their service (``UserServiceError``)
and references follow. Operations that need a token get the ``bearerAuth`` scheme.
The merged document is reused for ``OPENAPI_CACHE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from services.api_gateway.discovery import ServiceRegistry
from services.api_gateway.routing import RoutingTable
from shared.clock import Clock

log = logging.getLogger(__name__)

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
BEARER_SCHEME = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=3.0)


def merge_documents(
    gateway_document: Mapping[str, Any], service_documents: Mapping[str, Mapping[str, Any]], routing: RoutingTable
) -> dict[str, Any]:
    merged = copy.deepcopy(dict(gateway_document))
    paths: dict[str, Any] = merged.setdefault("paths", {})
    components: dict[str, dict[str, Any]] = merged.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(BEARER_SCHEME)
    tags = {tag["name"]: tag for tag in merged.get("tags", [])}
    # in the routing table's order: on a clash the earlier service keeps the plain name
    for service in [service for service in routing.services() if service in service_documents]:
        document = service_documents[service]
        renames = _claim_components(components, document.get("components", {}), service)
        for path, item in document.get("paths", {}).items():
            route = routing.match(path)
            if route is None or route.service != service:
                continue
            item = _rewrite_refs(copy.deepcopy(item), renames)
            if not routing.is_public(path):
                for method, operation in item.items():
                    if method in HTTP_METHODS:
                        operation.setdefault("security", [{"bearerAuth": []}])
            paths[path] = item
        for tag in document.get("tags", []):
            tags.setdefault(tag["name"], tag)
    if tags:
        merged["tags"] = list(tags.values())
    return merged


def _claim_components(
    merged: dict[str, dict[str, Any]], incoming: Mapping[str, Mapping[str, Any]], service: str
) -> dict[str, str]:
    """Add a service's components; returns the references renamed to avoid a clash."""
    renames: dict[str, str] = {}
    prefix = "".join(part.capitalize() for part in service.split("-"))
    for kind, entries in incoming.items():
        target = merged.setdefault(kind, {})
        for name in entries:
            if name in target and target[name] != entries[name]:
                new_name = f"{prefix}{name}"
                renames[f"#/components/{kind}/{name}"] = f"#/components/{kind}/{new_name}"
    for kind, entries in incoming.items():
        target = merged[kind]
        for name, value in entries.items():
            ref = f"#/components/{kind}/{name}"
            final = renames.get(ref, ref).rsplit("/", 1)[1]
            target.setdefault(final, _rewrite_refs(copy.deepcopy(value), renames))
    return renames


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if not renames:
        return node
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                node[key] = renames.get(value, value)
            else:
                _rewrite_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renames)
    return node


class OpenApiAggregator:
    def __init__(
        self,
        routing: RoutingTable,
        registry: ServiceRegistry,
        *,
        clock: Clock,
        cache_seconds: float,
        gateway_document: Callable[[], dict[str, Any]],
    ) -> None:
        self._routing = routing
        self._registry = registry
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._gateway_document = gateway_document
        self._last_good: dict[str, dict[str, Any]] = {}
        self._merged: dict[str, Any] | None = None
        self._merged_at = 0.0
        self._lock = asyncio.Lock()

    async def document(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        if self._fresh():
            assert self._merged is not None
            return self._merged
        async with self._lock:  # one refresh at a time; the others take its result
            if not self._fresh():
                self._merged = await self._build(session)
                self._merged_at = self._clock.monotonic()
            assert self._merged is not None
            return self._merged

    def _fresh(self) -> bool:
        return self._merged is not None and self._clock.monotonic() - self._merged_at < self._cache_seconds

    async def _build(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        services = [service for service in self._routing.services() if self._registry.pool(service) is not None]
        fetched = await asyncio.gather(*(self._fetch(session, service) for service in services))
        states: dict[str, str] = {}
        for service, document in zip(services, fetched, strict=True):
            if document is not None:
                self._last_good[service] = document
                states[service] = "current"
            else:
                states[service] = "stale" if service in self._last_good else "unavailable"
        for service in self._routing.services():
            states.setdefault(service, "not_deployed")
        merged = merge_documents(self._gateway_document(), self._last_good, self._routing)
        merged["x-services"] = states
        return merged

    async def _fetch(self, session: aiohttp.ClientSession, service: str) -> dict[str, Any] | None:
        pool = self._registry.pool(service)
        assert pool is not None
        for instance in pool.healthy_instances() or list(pool.instances):
            try:
                async with session.get(
                    instance.base_url + "/openapi.json", headers={"Host": instance.host_header}, timeout=FETCH_TIMEOUT
                ) as response:
                    if response.status == 200:
                        document: dict[str, Any] = await response.json(content_type=None)
                        return document
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.info("%s: no OpenAPI document from %s: %r", service, instance.address, exc)
        return None
