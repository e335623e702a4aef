"""The gateway's Prometheus series, beside the shared ``http_requests_total`` and
``http_request_duration_seconds`` (which it labels with the route prefix, e.g. ``/api/v1/users``).

Counters are counted once, here; ``GET /gateway/metrics`` reads the same counters back.
Breaker states and instance health are read live at scrape time by a collector,
so a gauge never shows an instance that has left the rotation.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.breaker import BreakerState

if TYPE_CHECKING:
    from services.api_gateway.gateway import Gateway

UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests_total",
    "Attempts to reach an upstream instance, by outcome: ok, error_status (a 502/503/504 answer), "
    "connect_error, connection_lost, timeout, bad_response",
    ["service", "outcome"],
)
UPSTREAM_REJECTED = Counter(
    "gateway_upstream_rejected_total",
    "Requests answered 503 without reaching an upstream: breaker_open, no_instance (none resolved), not_deployed",
    ["service", "reason"],
)
UPSTREAM_RETRIES = Counter(
    "gateway_upstream_retries_total", "Idempotent requests retried on another instance", ["service"]
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_response_seconds",
    "Time until an upstream's answer starts",
    ["service"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RATE_LIMIT_DECISIONS = Counter(
    "gateway_rate_limit_decisions_total",
    "Rate-limit decisions by backend (redis, local) and outcome (allowed, limited)",
    ["backend", "outcome"],
)

BREAKER_STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class GatewayStateCollector(Collector):
    """Breaker state and health of every instance, and the rate limiter's backend, of the running gateways."""

    def __init__(self) -> None:
        self._gateways: weakref.WeakSet[Gateway] = weakref.WeakSet()

    def track(self, gateway: Gateway) -> None:
        self._gateways.add(gateway)

    def forget(self, gateway: Gateway) -> None:
        self._gateways.discard(gateway)

    def describe(self) -> list[Metric]:
        return []  # the series depend on which gateways run; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        breaker_state = GaugeMetricFamily(
            "gateway_circuit_breaker_state",
            "Circuit breaker of each upstream instance: 0 closed, 1 half-open, 2 open",
            labels=["service", "instance"],
        )
        healthy = GaugeMetricFamily(
            "gateway_upstream_instance_healthy",
            "1 while an instance is in the rotation",
            labels=["service", "instance"],
        )
        redis_in_use = GaugeMetricFamily(
            "gateway_rate_limiter_redis", "1 while rate limits are kept in Redis, 0 on the local fallback"
        )
        for gateway in list(self._gateways):
            for pool in gateway.registry.pools():
                for instance in pool.instances:
                    labels = [pool.service, instance.address]
                    breaker_state.add_metric(labels, BREAKER_STATE_VALUES[instance.breaker.state])
                    healthy.add_metric(labels, 1 if instance.healthy else 0)
            redis_in_use.add_metric([], 1 if gateway.limiter.backend == "redis" else 0)
        yield breaker_state
        yield healthy
        yield redis_in_use


GATEWAY_STATE = GatewayStateCollector()
REGISTRY.register(GATEWAY_STATE)


def counter_values(counter: Counter) -> dict[tuple[str, ...], float]:
    """A counter's current values by label values, read through the public collect()."""
    values: dict[tuple[str, ...], float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                values[tuple(sample.labels.values())] = sample.value
    return values
