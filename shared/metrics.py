"""Prometheus metrics, defined once; every series carries the ``service`` label."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_POOL = Gauge("db_pool_connections", "Database pool connections", ["service", "state"])
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Events written to the outbox and not yet published", ["service"])
EVENTS_PUBLISHED = Counter("events_published_total", "Events published to the broker", ["service", "event_type"])
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events taken from the broker, by outcome (processed, duplicate, failed, dead_lettered)",
    ["service", "event_type", "outcome"],
)
BROKER_CONNECTED = Gauge(
    "broker_connected", "1 while the service holds its broker connection for this role", ["service", "role"]
)
HOUSEKEEPING_DELETED = Counter(
    "housekeeping_deleted_total", "Rows past their retention deleted (shared/housekeeping.py)", ["service", "table"]
)
GC_PAUSE = Histogram(
    "python_gc_pause_seconds",
    "How long the process stood still for a garbage collection, by generation (2: a full one)",
    ["service", "generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)


async def metrics_endpoint(request: Request) -> Response:
    """Refresh the gauges that are cheaper to read on scrape than to keep current."""
    state = request.app.state
    service = state.settings.service_name
    db = getattr(state, "db", None)
    if db is not None:
        for key, value in db.pool_status().items():
            DB_POOL.labels(service, key).set(value)
        relay = getattr(state, "relay", None)
        if relay is not None:
            try:
                OUTBOX_BACKLOG.labels(service).set(await relay.backlog())
            except Exception:  # a scrape must not fail because the database is away
                pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
