"""Where each service runs: instances from configuration and DNS, kept honest by health checks.

Every configured base URL (``USER_SERVICE_URLS=http://user-service:8001``) is
resolved again on every health-check round, and each address it resolves to is
an instance, so compose replicas (``--scale user-service=2``) are found and a
replica that goes away leaves. Each instance has its own circuit breaker.

- Active checks: every round, ``GET <instance><HEALTH_CHECK_PATH>``; 200 puts the
  instance in the rotation, anything else takes it out. A new address is checked
  before it joins. An instance whose breaker is open is not checked: the breaker's
  half-open probes decide when it is tried again, so it gets no connection until then.
- Passive marking: a connection that cannot be made takes the instance out at
  once; a successful answer brings it back.
- Choice (:meth:`ServicePool.choose`): the healthy instance with the fewest
  requests in flight whose breaker admits the call, ties taken in turn. When no
  instance is healthy every instance is a candidate and the breakers alone decide,
  so one flapping check cannot take a whole service offline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from yarl import URL

from shared.breaker import BreakerState, CircuitBreaker
from shared.clock import Clock

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
BreakerFactory = Callable[[str], CircuitBreaker]


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to now (DNS, /etc/hosts, Docker's embedded DNS)."""
    if _is_ip_address(host):
        return [host]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(eq=False)
class Instance:
    """One address of a service; compared by identity, so an instance that left stays distinct."""

    service: str
    address: str  # "10.0.0.5:8001", "[::1]:8001"
    base_url: str  # "http://10.0.0.5:8001"
    host_header: str  # the configured "user-service:8001", sent as Host
    breaker: CircuitBreaker
    healthy: bool = False
    outstanding: int = 0  # requests in flight
    last_check: datetime | None = None
    latency_ms: float | None = None
    last_error: str | None = None

    def mark_unhealthy(self, reason: str) -> None:
        if self.healthy:
            log.warning("%s %s leaves the rotation: %s", self.service, self.address, reason)
        self.healthy = False
        self.last_error = reason

    def mark_healthy(self) -> None:
        if not self.healthy:
            log.info("%s %s joins the rotation", self.service, self.address)
        self.healthy = True

    def snapshot(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "url": self.base_url,
            "healthy": self.healthy,
            "breaker": self.breaker.snapshot(),
            "outstanding": self.outstanding,
            "last_check": self.last_check.isoformat() if self.last_check else None,
            "latency_ms": self.latency_ms,
            "last_error": self.last_error,
        }


@dataclass
class _ConfiguredUrl:
    scheme: str
    host: str
    port: int
    host_header: str

    @classmethod
    def parse(cls, url: str) -> _ConfiguredUrl:
        parsed = URL(url)
        assert parsed.host is not None and parsed.port is not None  # checked by the settings
        host_header = parsed.host_port_subcomponent or parsed.host
        return cls(parsed.scheme, parsed.host, parsed.port, host_header)

    def base_url(self, address: str) -> str:
        return f"{self.scheme}://{_host_port(address, self.port)}"


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass
class ServicePool:
    service: str
    urls: list[_ConfiguredUrl]
    instances: tuple[Instance, ...] = ()
    resolved_once: bool = False
    _turn: int = field(default=0, repr=False)

    def choose(self, tried: Collection[Instance] = ()) -> Instance | None:
        """An instance for one call, admitted by its breaker (which then expects the call's outcome)."""
        untried = [instance for instance in self.instances if instance not in tried]
        candidates = [instance for instance in untried if instance.healthy] or untried
        if len(candidates) <= 1:
            return candidates[0] if candidates and candidates[0].breaker.allow() else None
        self._turn += 1
        count = len(candidates)
        start = self._turn % count
        in_turn = [candidates[(start + offset) % count] for offset in range(count)]
        for instance in sorted(in_turn, key=lambda candidate: candidate.outstanding):  # stable: ties keep the turn
            if instance.breaker.allow():
                return instance
        return None

    def retry_after(self) -> float:
        """Seconds until some instance's breaker admits a call again."""
        waits = [instance.breaker.retry_after() for instance in self.instances]
        return min(waits, default=0.0)

    def healthy_instances(self) -> list[Instance]:
        return [instance for instance in self.instances if instance.healthy]

    @property
    def status(self) -> str:
        """up (all healthy), degraded (some), down (none), unknown (not resolved yet)."""
        if not self.instances:
            return "down" if self.resolved_once else "unknown"
        healthy = len(self.healthy_instances())
        return "up" if healthy == len(self.instances) else "degraded" if healthy else "down"

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "configured": [url.host_header for url in self.urls],
            "instances": [instance.snapshot() for instance in self.instances],
        }


class ServiceRegistry:
    """The pools of every service with configured URLs; :meth:`refresh` is one discovery and health round."""

    def __init__(
        self,
        upstream_urls: Mapping[str, Iterable[str]],
        *,
        breaker_factory: BreakerFactory,
        clock: Clock,
        resolver: Resolver = system_resolver,
        health_path: str = "/ready",
        health_timeout: float = 2.0,
    ) -> None:
        self._pools = {
            service: ServicePool(service, [_ConfiguredUrl.parse(url) for url in urls])
            for service, urls in upstream_urls.items()
        }
        self._breaker_factory = breaker_factory
        self._clock = clock
        self._resolver = resolver
        self._health_path = health_path
        self._health_timeout = aiohttp.ClientTimeout(total=health_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def pool(self, service: str) -> ServicePool | None:
        """The service's pool; None when the service is not deployed (no URL configured)."""
        return self._pools.get(service)

    def pools(self) -> list[ServicePool]:
        return list(self._pools.values())

    # --- the discovery loop ------------------------------------------------------------------

    async def start(self, session: aiohttp.ClientSession, interval: float) -> None:
        """One round now (so the gateway starts knowing its upstreams), then one every ``interval`` seconds."""
        self._session = session
        await self.refresh()
        self._task = asyncio.create_task(self._run(interval), name="gateway-discovery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("discovery round failed; the previous instances stay")

    async def refresh(self) -> None:
        """Resolve every configured host name again, then check every instance's health."""
        await asyncio.gather(*(self._refresh_pool(pool) for pool in self._pools.values()))
        self.rounds += 1

    async def _refresh_pool(self, pool: ServicePool) -> None:
        addresses = await self._resolve(pool)
        if addresses is None:  # resolution failed: keep what we had rather than empty the pool
            current = list(pool.instances)
        else:
            known = {instance.base_url: instance for instance in pool.instances}
            current = [
                known.get(base_url) or self._new_instance(pool.service, base_url, host) for base_url, host in addresses
            ]
        await asyncio.gather(*(self._check(instance) for instance in current))
        gone = [instance.address for instance in pool.instances if instance not in current]
        if gone:
            log.info("%s: %s no longer resolve, out of the rotation", pool.service, ", ".join(gone))
        pool.instances = tuple(current)
        pool.resolved_once = True

    async def _resolve(self, pool: ServicePool) -> list[tuple[str, str]] | None:
        """(base URL, Host header) of every address of every configured URL; None if none resolved."""
        found: dict[str, str] = {}
        failures = 0
        for url in pool.urls:
            try:
                addresses = await asyncio.wait_for(self._resolver(url.host, url.port), self._health_timeout.total)
            except (OSError, TimeoutError) as exc:
                failures += 1
                log.warning("%s: cannot resolve %s: %r", pool.service, url.host, exc)
                continue
            for address in addresses:
                found.setdefault(url.base_url(address), url.host_header)
        if failures and not found:
            return None
        return list(found.items())

    def _new_instance(self, service: str, base_url: str, host_header: str) -> Instance:
        address = base_url.partition("://")[2]
        return Instance(service, address, base_url, host_header, self._breaker_factory(f"{service}@{address}"))

    async def _check(self, instance: Instance) -> None:
        if instance.breaker.state is BreakerState.OPEN:
            return  # the breaker's half-open probes decide when it is tried again
        assert self._session is not None, "start() the registry before checking health"
        started = time.perf_counter()
        try:
            async with self._session.get(
                instance.base_url + self._health_path,
                headers={"Host": instance.host_header},
                timeout=self._health_timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome: str | None = f"health check failed: {type(exc).__name__}"
        else:
            outcome = None if status == 200 else f"health check answered {status}"
        instance.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        instance.last_check = self._clock.now()
        if outcome is None:
            instance.last_error = None
            instance.mark_healthy()
        else:
            instance.mark_unhealthy(outcome)
