"""The Grafana provisioning under ``deploy/grafana/``: dashboards are JSON Grafana can load, their queries
are PromQL that Prometheus parses, and every metric they read is one the services really expose.

No Grafana server runs here, so the dashboards are checked as files; the metric names are checked against
a real scrape of the test fleet (and, for the bot, which the fleet does not run, against its module).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from services.telegram_bot import health as bot_health
from shared.fleet import FLEET
from shared.runner.layout import REPO_ROOT
from shared.testing.fleet import TestFleet

GRAFANA_DIR = REPO_ROOT / "deploy" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DATASOURCE_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER_FILE = GRAFANA_DIR / "provisioning" / "dashboards" / "repitbot.yml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.microservices.yml"

DATASOURCE_UID = "prometheus"
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"  # where compose mounts deploy/grafana/dashboards
PANEL_TYPES = {"timeseries", "stat", "table"}
EXPECTED_DASHBOARDS = {"fleet.json", "gateway.json", "events.json", "business.json"}

# Series from outside the services: RabbitMQ's rabbitmq_prometheus plugin and the PostgreSQL and Redis
# exporters (not in the test fleet), and Prometheus' own per-target ``up``.
EXTERNAL_PREFIXES = ("rabbitmq_", "pg_", "redis_")
PROMETHEUS_OWN = {"up"}

# Words of PromQL that look like metric names: aggregations, keywords and functions.
PROMQL_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
}  # fmt: skip
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan"}  # fmt: skip
PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "day_of_month",
    "day_of_week", "days_in_month", "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters", "hour",
    "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2", "log10", "minute", "month",
    "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp",
    "vector", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
}  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are neither PromQL's words nor label names.

    Label names only occur inside ``{...}`` matchers and grouping clauses, so those go first (strings before
    them: a regex may hold braces); what is then followed by ``(`` must be a function, and is checked to be one.
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call:
            assert word in PROMQL_FUNCTIONS | PROMQL_AGGREGATIONS, f"unknown PromQL function {word!r} in {expr!r}"
        elif word not in PROMQL_KEYWORDS | PROMQL_AGGREGATIONS:
            names.add(word)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every series name a Prometheus text exposition offers, also for families with no sample yet.

    A labelled metric that was never incremented has only its ``# TYPE`` line; the names a query can use
    follow from the type (a histogram ``x`` is queried as ``x_bucket``, ``x_sum``, ``x_count``).
    """
    names: set[str] = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in suffixes.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def bot_metric_names() -> set[str]:
    """The bot's metrics, from their definitions in services/telegram_bot/health.py (the test fleet runs no bot)."""
    registry = CollectorRegistry()
    for value in vars(bot_health).values():
        if isinstance(value, prometheus_client.metrics.MetricWrapperBase):
            registry.register(value)
    return exposed_names(generate_latest(registry).decode())


@cache
def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def targets() -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard file, panel title, target) for every query of every panel."""
    return [
        (name, panel["title"], target)
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_four_dashboards_exist() -> None:
    assert set(dashboards()) == EXPECTED_DASHBOARDS


@pytest.mark.parametrize("name", sorted(EXPECTED_DASHBOARDS))
def test_dashboard_has_what_grafana_needs(name: str) -> None:
    board = dashboards()[name]
    assert isinstance(board.get("uid"), str) and 0 < len(board["uid"]) <= 40  # Grafana's uid limit
    assert board.get("title")
    assert isinstance(board.get("schemaVersion"), int) and board["schemaVersion"] >= 36
    assert "id" not in board or board["id"] is None  # a provisioned dashboard gets its id from Grafana
    panels = board.get("panels")
    assert panels, f"{name} has no panels"
    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids), f"{name}: panel ids {ids}"
    for panel in panels:
        where = f"{name} panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("type") in PANEL_TYPES, where
        assert panel.get("title"), where
        grid = panel.get("gridPos", {})
        assert {"h", "w", "x", "y"} <= grid.keys(), where
        assert grid["w"] > 0 and grid["h"] > 0 and 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, where
        assert panel.get("datasource") == {"type": "prometheus", "uid": DATASOURCE_UID}, where
        assert panel.get("targets"), f"{where} has no query"
        ref_ids = [target.get("refId") for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids), where
        for target in panel["targets"]:
            assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, where
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), where


def test_dashboard_panels_do_not_overlap() -> None:
    for name, board in dashboards().items():
        cells: dict[tuple[int, int], int] = {}
        for panel in board["panels"]:
            grid = panel["gridPos"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{name}: panels {cells[x, y]} and {panel['id']} overlap"
                    cells[x, y] = panel["id"]


def test_dashboard_uids_and_titles_are_unique() -> None:
    uids = [board["uid"] for board in dashboards().values()]
    titles = [board["title"] for board in dashboards().values()]
    assert len(set(uids)) == len(uids), uids
    assert len(set(titles)) == len(titles), titles


def test_every_query_is_promql_that_prometheus_parses(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule: Prometheus' own parser, no server needed."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run installs it)"
    rules = [{"record": f"dashboard:query_{i}", "expr": target["expr"]} for i, (_, _, target) in enumerate(targets())]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_names_are_parsed_out_of_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket{route=~"/a{1}"}[5m])))'
        " / on (service) group_left () sum(up == bool 1) or vector(0) - outbox_backlog offset 1h"
    )
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up", "outbox_backlog"}
    with pytest.raises(AssertionError, match="unknown PromQL function"):
        metric_names("rates(http_requests_total[5m])")


def test_exposed_names_follow_the_metric_types() -> None:
    exposition = (
        "# TYPE http_requests_total counter\n"
        "# TYPE http_request_duration_seconds histogram\n"
        "# TYPE outbox_backlog gauge\n"
        'broker_connected{service="x"} 1.0\n'
    )
    assert exposed_names(exposition) == {
        "http_requests_total",
        "http_requests_created",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "http_request_duration_seconds_created",
        "outbox_backlog",
        "broker_connected",
    }


async def test_dashboards_read_only_metrics_the_services_expose(fleet: TestFleet) -> None:
    # Requests through the gateway, so the request and upstream series have samples, not only their TYPE lines.
    async with fleet.client("api-gateway") as gateway:
        assert (await gateway.get("/.well-known/jwks.json")).status_code == 200  # proxied to user-service
        assert (await gateway.get("/api/v1/lessons")).status_code == 401  # refused by the gateway itself
        await gateway.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"})
    scraped: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for spec in FLEET:
            response = await client.get(fleet.url(spec.name) + "/metrics")
            assert response.status_code == 200, spec.name
            scraped[spec.name] = response.text
    gateway_metrics = scraped["api-gateway"]
    # label order in the exposition is not the declared one: match the label anywhere in the braces
    assert re.search(r'^http_requests_total\{[^}]*service="api-gateway"', gateway_metrics, re.M), "no request counted"
    assert re.search(r"^gateway_upstream_response_seconds_bucket\{", gateway_metrics, re.M), "no upstream call timed"

    available = set().union(*(exposed_names(text) for text in scraped.values())) | bot_metric_names()
    missing = {}
    for name, title, target in targets():
        for metric in metric_names(target["expr"]):
            if metric in available or metric in PROMETHEUS_OWN or metric.startswith(EXTERNAL_PREFIXES):
                continue
            missing.setdefault(metric, []).append(f"{name}: {title}")
    assert not missing, f"dashboards query metrics no service exposes: {missing}"


def test_every_dashboard_section_of_the_issue_is_queried() -> None:
    """The issue's list (fleet, gateway, events, business) by the metric each item needs."""
    used = {
        name: set().union(*(metric_names(t["expr"]) for n, _, t in targets() if n == name)) for name in dashboards()
    }
    required = {
        "fleet.json": {"up", "http_requests_total", "http_request_duration_seconds_bucket"},
        "gateway.json": {
            "gateway_rate_limit_decisions_total",
            "gateway_circuit_breaker_state",
            "gateway_upstream_response_seconds_bucket",
        },
        "events.json": {
            "events_published_total",
            "events_consumed_total",
            "rabbitmq_queue_messages_ready",
            "outbox_backlog",
        },
        "business.json": {
            "analytics_lessons_completed_total",
            "analytics_revenue_minor_units_total",
            "analytics_active_students",
            "analytics_xp_awarded_total",
            "analytics_achievements_unlocked_total",
        },
    }
    for name, metrics in required.items():
        assert metrics <= used[name], f"{name} lacks {metrics - used[name]}"
    outcomes = " ".join(t["expr"] for n, _, t in targets() if n == "events.json")
    assert '"failed"' in outcomes and '"dead_lettered"' in outcomes


def test_datasource_provisioning() -> None:
    config = yaml.safe_load(DATASOURCE_FILE.read_text())
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == DATASOURCE_UID  # the uid every panel names
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["access"] == "proxy"  # Grafana's server queries Prometheus, not the browser


def test_dashboard_provider_provisioning() -> None:
    config = yaml.safe_load(PROVIDER_FILE.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT


def test_compose_mounts_the_provisioning_where_grafana_reads_it() -> None:
    grafana = yaml.safe_load(COMPOSE_FILE.read_text()).get("services", {}).get("grafana")
    if grafana is None:
        pytest.skip("docker-compose.microservices.yml has no grafana service yet")
    mounts = {}
    for volume in grafana.get("volumes", []):
        source, target = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        mounts[target] = (REPO_ROOT / source).resolve()
    assert mounts.get(DASHBOARDS_MOUNT) == DASHBOARDS_DIR.resolve(), mounts
    assert mounts.get("/etc/grafana/provisioning") == (GRAFANA_DIR / "provisioning").resolve(), mounts
