"""Prometheus and Alertmanager configuration, checked offline with the real tools.

``promtool`` (Debian's ``prometheus``) checks the scrape configuration and the rules and runs the
rules' unit tests (deploy/prometheus/tests: the alert timing is proven there, not live);
``amtool`` (``prometheus-alertmanager``) checks Alertmanager's. Both come from ``make deps`` and
.ci/run; a missing tool fails here rather than skipping. The rest ties the files to the code: every
service in shared/fleet.py is scraped and watched, every alert is complete, and every metric an
alert reads is one our code defines or one an exporter documents.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from shared.fleet import FLEET
from shared.runner.layout import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.microservices.yml"

BOT = ("telegram-bot", 8009)  # services/telegram_bot/health.py serves /metrics there
EXPORTERS = {
    "rabbitmq": "rabbitmq:15692",
    "postgres-exporter": "postgres-exporter:9187",
    "redis-exporter": "redis-exporter:9121",
}
# modules whose import defines every series our processes expose (the bot's and the gateway's own too)
METRIC_MODULES = (
    "shared.metrics",
    "services.api_gateway.metrics",
    "services.analytics_service.metrics",
    "services.telegram_bot.health",
)
# Series from outside our code, as their projects document them; `up` is Prometheus' own per target.
# Kept by hand (no exporter runs here), so a misspelt name fails rather than passing on its prefix.
EXPORTER_SERIES = {
    "up": "Prometheus, per scrape target",
    "rabbitmq_queue_messages_ready": "RabbitMQ rabbitmq_prometheus plugin, /metrics/per-object (labels vhost, queue)",
    "pg_up": "prometheus-community/postgres_exporter",
    "pg_stat_database_numbackends": "postgres_exporter, stat_database collector (labels datid, datname)",
    "pg_settings_max_connections": "postgres_exporter, pg_settings",
    "redis_up": "oliver006/redis_exporter",
}
EXPORTER_PREFIXES = ("rabbitmq_", "pg_", "redis_")
RUNBOOK_DOC = "FINAL_MICROSERVICES_DOCUMENTATION.md"
SEVERITIES = {"critical", "warning"}


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it comes with Debian's {package} package (make deps, or .ci/run)")
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}"
    return result


def promtool(*args: str | Path) -> str:
    result = run(tool("promtool", "prometheus"), *args)
    return result.stdout + result.stderr


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@cache
def alerts() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"] if "alert" in rule]


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    output = promtool("check", "config", PROMETHEUS_CONFIG)
    # rule_files resolve relative to the config: the check reads (and checks) each real file
    for path in RULE_FILES:
        assert f"Checking {path}" in output, output
    assert RULE_FILES, "no rule files under deploy/prometheus/rules"


def test_rules_are_valid() -> None:
    promtool("check", "rules", *RULE_FILES)


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool tests under deploy/prometheus/tests"
    output = promtool("test", "rules", *RULE_TESTS)
    assert "SUCCESS" in output, output


def test_alertmanager_config_is_valid_and_routes_every_alert_to_notification_service() -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    run(amtool, "check-config", ALERTMANAGER_CONFIG)
    for severity in sorted(SEVERITIES):
        routed = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", f"severity={severity}")
        assert routed.stdout.split() == ["notification-service"], routed.stdout


def test_alertmanager_calls_the_webhook_with_the_token_notification_service_reads() -> None:
    config = load(ALERTMANAGER_CONFIG)
    (receiver,) = config["receivers"]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"] == "http://notification-service:8006/internal/alerts"
    assert webhook["send_resolved"] is True
    authorization = webhook["http_config"]["authorization"]
    assert authorization.get("type", "Bearer") == "Bearer"  # services/notification_service/api/alerts.py
    environment = load(COMPOSE_FILE)["services"]["notification-service"]["environment"]
    assert authorization["credentials_file"] == environment["ALERTMANAGER_TOKEN_FILE"]
    assert set(config["route"]["group_by"]) == {"alertname", "service"}


def test_every_service_is_scraped_by_its_compose_name_and_port() -> None:
    config = load(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, port in [(spec.name, spec.port) for spec in FLEET] + [BOT]:
        assert name in jobs, f"prometheus.yml has no job for {name}"
        # DNS type A on the compose name: every replica of `--scale` is a target
        (sd,) = jobs[name]["dns_sd_configs"]
        assert (sd["names"], sd["type"], sd["port"]) == ([name], "A", port), (name, sd)
    for name, target in EXPORTERS.items():
        assert jobs[name]["static_configs"][0]["targets"] == [target], name
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"  # keeps the `queue` label
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
    # promtool resolves this glob next to the config: it must reach the files checked here
    assert sorted(p for pattern in config["rule_files"] for p in PROMETHEUS_DIR.glob(pattern)) == RULE_FILES


def test_a_service_with_no_instance_left_is_alerted_on() -> None:
    """A stopped compose service leaves DNS: its targets vanish and only absent() notices."""
    (missing,) = [rule for rule in alerts() if rule["alert"] == "ServiceMissing"]
    watched = set(re.findall(r'absent\(up\{job="([^"]+)"\}\)', missing["expr"]))
    assert watched == {spec.name for spec in FLEET} | {BOT[0]}


def test_every_alert_has_a_duration_a_severity_a_runbook_and_a_unit_test() -> None:
    tested: dict[str, set[bool]] = {}
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                tested.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "an alert name is used twice"
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name} has no `for:` duration"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name
        assert annotations["runbook"] == f"{RUNBOOK_DOC}#runbook-{name.lower()}", name
        # proven both ways: a case where it fires and one where it must not (yet)
        assert tested.get(name) == {True, False}, f"{name} needs a firing and a silent promtool test case"


# identifiers in PromQL that are not series names
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: identifiers that are not functions, keywords,
    label names (matchers and by/on lists), strings, durations or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings first: they may hold anything
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def exposed_metric_names() -> set[str]:
    """Every series name our code defines, read from the registry the modules fill on import."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created"),
    }
    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def test_metric_names_parse_as_expected() -> None:
    expr = 'sum by (service) (rate(http_requests_total{route="/ready", status=~"5.."}[2m])) > 0 unless on (service) (x offset 15m)'
    assert metric_names(expr) == {"http_requests_total", "x"}


def test_alerts_read_only_series_that_exist() -> None:
    exposed = exposed_metric_names()
    # what the gateway's collector yields even with no gateway running
    assert {"http_requests_total", "gateway_circuit_breaker_state", "telegram_bot_notifications_total"} <= exposed
    for rule in alerts():
        for name in metric_names(rule["expr"]):
            assert name in exposed or name in EXPORTER_SERIES, (
                f"{rule['alert']} reads {name}, which neither our code nor an exporter exposes"
            )
    # and the exporter list holds only exporters' names, never one of ours spelled by hand
    assert all(name == "up" or name.startswith(EXPORTER_PREFIXES) for name in EXPORTER_SERIES)
    assert not exposed & set(EXPORTER_SERIES)
