"""A real Prometheus (Debian's /usr/bin/prometheus) scraping the test fleet with the configuration
``python -m shared.runner up --monitoring`` generates (shared/runner/monitoring.py).

Every PromQL expression of the alert rules and the dashboards is run through Prometheus' HTTP API: it
must not error, and must return data unless EXPECTED_EMPTY says why it may be empty here. Stopping one
service through the fleet's supervisord makes ``up == 0`` for it; it is started again before the test
ends, because the fleet is shared by the whole session.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.fleet import FLEET
from shared.runner import monitoring
from shared.runner.supervisor import Supervisor
from shared.testing.accounts import PASSWORD
from shared.testing.fleet import TestFleet

RULE_FILES = monitoring.rule_files()
DASHBOARDS = sorted((monitoring.REPO_ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
STOPPED_SERVICE = "material-service"
WAIT_SECONDS = 30  # bound of every poll below (Prometheus scrapes and evaluates every second here)

_BOT = "the test fleet runs no Telegram bot (bot tests run it in-process), so no telegram_bot_* series"
_RABBIT = "no RabbitMQ Prometheus plugin is scraped locally (only in compose): no rabbitmq_* series"
_EXPORTERS = "the PostgreSQL and Redis exporters run only in compose: no pg_* / redis_* series"
_HEALTHY = "a comparison that is empty while everything is healthy; the promtool tests prove it firing"
_BUSINESS = (
    "analytics' counters get their first sample from a completed lesson, a charge or an XP award; this test"
    " drives no lesson flow (tests/test_dashboards.py checks these names against a scrape)"
)
_NO_5XX = "no request was answered with a 5xx, so no series has status=~'5..' and the ratio has no numerator"
_NO_FAILURE = "a healthy fleet under light traffic: no consumer fails, no upstream fails or is retried"

# alert name or expression → why it may return nothing against a healthy, lightly used test fleet
EXPECTED_EMPTY: dict[str, str] = {
    # alerts: each filters to the bad case, so a healthy fleet returns nothing
    "ServiceDown": "every target is up; test_stopping_a_service_makes_up_zero_for_it proves it non-empty",
    "ServiceMissing": "every fleet job has a target; the bot's absent() is covered by the promtool tests",
    "RedisDown": _EXPORTERS,
    "CircuitBreakerOpen": _HEALTHY,
    "GatewayHighErrorRate": _HEALTHY,
    "DatabaseUnavailable": _HEALTHY,
    "DatabasePoolExhausted": _HEALTHY,
    "PostgresDown": _EXPORTERS,
    "PostgresConnectionsNearLimit": _EXPORTERS,
    "BrokerDisconnected": _HEALTHY,
    "RabbitMQQueueBacklog": _RABBIT,
    "DeadLettersGrowing": _RABBIT,
    "EventsDeadLettered": "no event is dead-lettered by a healthy fleet (events_consumed_total has no such outcome)",
    "OutboxBacklogGrowing": _HEALTHY,
    "NotificationsFailing": _BOT,
    # dashboards
    "sum by (queue) (rabbitmq_queue_messages_ready)": _RABBIT,
    "sum by (queue) (rabbitmq_queue_messages_unacked)": _RABBIT,
    "sum by (queue) (rabbitmq_queue_consumers)": _RABBIT,
    "sum by (outcome) (rate(telegram_bot_messages_total[5m]))": _BOT,
    "sum by (outcome) (rate(telegram_bot_notifications_total[5m]))": _BOT,
    "max(telegram_bot_offline_queue_length)": _BOT,
    "sum(increase(analytics_lessons_completed_total[24h]))": _BUSINESS,
    "max(analytics_active_students)": _BUSINESS,
    "(sum by (currency) (increase(analytics_revenue_minor_units_total[24h])) - (sum by (currency)"
    " (increase(analytics_refunded_minor_units_total[24h])) or sum by (currency)"
    " (increase(analytics_revenue_minor_units_total[24h])) * 0)) / 100": _BUSINESS,
    "sum(increase(analytics_lessons_completed_total[7d])) / clamp_min(max(analytics_active_students), 1)": _BUSINESS,
    "sum(increase(analytics_lessons_completed_total[1h]))": _BUSINESS,
    "sum by (currency) (increase(analytics_revenue_minor_units_total[1h])) / 100": _BUSINESS,
    "sum by (currency) (increase(analytics_refunded_minor_units_total[1h])) / 100": _BUSINESS,
    "sum(increase(analytics_xp_awarded_total[1h]))": _BUSINESS,
    "sum(increase(analytics_achievements_unlocked_total[1h]))": _BUSINESS,
    "sum(increase(analytics_xp_awarded_total[1d])) / clamp_min(max(analytics_active_students), 1)": _BUSINESS,
    'sum(rate(events_consumed_total{outcome=~"failed|dead_lettered"}[5m]))': _NO_FAILURE,
    'sum by (service, event_type) (rate(events_consumed_total{outcome="failed"}[5m]))': _NO_FAILURE,
    'sum by (service, event_type) (rate(events_consumed_total{outcome="dead_lettered"}[5m]))': _NO_FAILURE,
    'sum by (service, outcome) (rate(gateway_upstream_requests_total{outcome!="ok"}[5m]))': _NO_FAILURE,
    "sum by (service) (rate(gateway_upstream_retries_total[5m]))": _NO_FAILURE,
    "sum by (service, reason) (rate(gateway_upstream_rejected_total[5m]))": _NO_FAILURE,
    'sum(rate(http_requests_total{status=~"5.."}[5m])) / clamp_min(sum(rate(http_requests_total[5m])), 1e-9)': _NO_5XX,
    'sum by (service) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (service) (rate(http_requests_total[5m]))': _NO_5XX,
    "sum by (outcome) (rate(telegram_bot_offline_writes_total[5m]))": _BOT,
}


def alert_expressions() -> dict[str, str]:
    """Alert name → its expression, from deploy/prometheus/rules."""
    found = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found[rule.get("alert") or rule["record"]] = rule["expr"]
    return found


def dashboard_expressions() -> dict[str, str]:
    """Expression → where it is used (dashboard file and panel), Grafana's $__rate_interval as 5m."""
    found: dict[str, str] = {}
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "5m")
                found.setdefault(expr, f"{path.name}: {panel['title']}")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def query(client: httpx.Client, expr: str) -> list[dict[str, Any]]:
    """The instant vector (or scalar, as one sample) of ``expr``; fails on a PromQL error."""
    response = client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr!r}: {response.text[:500]}"
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"value": data["result"]}]
    return data["result"]


def wait_for(client: httpx.Client, expr: str, what: str) -> list[dict[str, Any]]:
    """Poll ``expr`` (bounded) until it returns data."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (result := query(client, expr)):
        assert time.monotonic() < deadline, f"{what}: {expr!r} still empty after {WAIT_SECONDS}s"
        time.sleep(0.5)
    return result


def drive_traffic(fleet: TestFleet) -> None:
    """Requests through the gateway, so request, upstream and rate-limit series have samples, and a
    registration, so an event (user.registered) is published and consumed."""
    with fleet.sync_client("api-gateway") as gateway:
        email = f"monitoring-{uuid.uuid4().hex[:10]}@example.test"
        registered = gateway.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Monitoring Tutor"}
        )
        assert registered.status_code == 201, registered.text
        assert gateway.get("/.well-known/jwks.json").status_code == 200  # proxied to user-service
        assert gateway.get("/api/v1/lessons").status_code == 401  # refused by the gateway itself
        gateway.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"})


@pytest.fixture(scope="module")
def prometheus(fleet: TestFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Prometheus on a free port scraping the fleet every second; a client on its API once every target is up."""
    drive_traffic(fleet)
    folder: Path = tmp_path_factory.mktemp("prometheus")
    port = _free_port()
    config = monitoring.prometheus_config(
        fleet.layout, include_bot=False, scrape_interval="1s", evaluation_interval="1s"
    )
    for job in config["scrape_configs"]:
        if job["job_name"] == monitoring.PROMETHEUS_PROGRAM:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    config_file = folder / "prometheus.yml"
    config_file.write_text(monitoring.render_prometheus_config(config))
    log = folder / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            monitoring.prometheus_command(config_file, folder / "data", port),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            monitoring.wait_prometheus_ready(url, timeout=WAIT_SECONDS)
        except monitoring.MonitoringError as error:
            pytest.fail(f"{error}\n{log.read_text()[-3000:]}")
        with httpx.Client(base_url=url, timeout=10) as client:
            jobs = "|".join(spec.name for spec in FLEET)
            wait_for(client, f'count(up{{job=~"{jobs}"}} == 1) == {len(FLEET)}', "every fleet target up")
            # three scrapes of each: rate() and increase() need two samples in their window
            wait_for(client, f'min(count_over_time(up{{job=~"{jobs}"}}[1m])) >= 3', "three scrapes")
            # the registration's event, published and consumed, scraped twice (its rate needs two samples)
            for series in ("events_published_total", 'events_consumed_total{outcome="processed"}'):
                wait_for(client, f"count_over_time({series}[1m]) >= 2", f"{series} scraped")
            yield client
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_expected_empty_names_only_real_expressions() -> None:
    known = set(alert_expressions()) | set(dashboard_expressions())
    assert set(EXPECTED_EMPTY) <= known, f"stale EXPECTED_EMPTY entries: {set(EXPECTED_EMPTY) - known}"


def test_every_alert_and_dashboard_query_returns_data_or_has_a_reason(prometheus: httpx.Client) -> None:
    expressions = {name: (expr, f"alert {name}") for name, expr in alert_expressions().items()}
    expressions |= {expr: (expr, where) for expr, where in dashboard_expressions().items()}
    assert len(expressions) > len(EXPECTED_EMPTY)

    empty = {}
    for key, (expr, where) in expressions.items():
        if not query(prometheus, expr) and key not in EXPECTED_EMPTY:  # query() fails on an error
            empty[where] = expr
    assert not empty, f"queries that return nothing with no reason in EXPECTED_EMPTY: {empty}"


def test_stopping_a_service_makes_up_zero_for_it(fleet: TestFleet, prometheus: httpx.Client) -> None:
    supervisor = Supervisor(fleet.layout)
    up = f'up{{job="{STOPPED_SERVICE}"}}'
    assert query(prometheus, f"{up} == 1"), "the service must be up before it is stopped"
    supervisor.stop_program(STOPPED_SERVICE)
    try:
        (down,) = wait_for(prometheus, f"{up} == 0", f"{STOPPED_SERVICE} seen down")
        assert (
            down["metric"]["instance"]
            == f"127.0.0.1:{fleet.layout.port(next(s for s in FLEET if s.name == STOPPED_SERVICE))}"
        )
        # and the alert's own expression now selects it (ServiceDown fires after `for: 1m`)
        assert {r["metric"]["job"] for r in query(prometheus, alert_expressions()["ServiceDown"])} == {STOPPED_SERVICE}
    finally:
        # the fleet is shared by the session: the service comes back, ready, before the next test
        supervisor.start_program(STOPPED_SERVICE)
        deadline = time.monotonic() + WAIT_SECONDS
        with fleet.sync_client(STOPPED_SERVICE, timeout=2) as client:
            while True:
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{STOPPED_SERVICE} not ready again within {WAIT_SECONDS}s"
                time.sleep(0.3)
    wait_for(prometheus, f"{up} == 1", f"{STOPPED_SERVICE} seen up again")
    # the gateway has it back in its rotation (its health checks run every 5 s)
    wait_for(
        prometheus,
        f'min(gateway_upstream_instance_healthy{{service="{STOPPED_SERVICE}"}}) == 1',
        "the gateway routes to it again",
    )
