"""The local runner's parts that need no running fleet: config, environment, secrets, provisioning."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
import redis
import yaml

from shared.fleet import FLEET, TEST_PORT_OFFSET, ServiceSpec
from shared.runner import logs, monitoring, provision, servers
from shared.runner.__main__ import bot_line
from shared.runner.dev_secrets import EXTRA_CLIENT_IDS, ensure_dev_secrets
from shared.runner.environment import bot_environment, service_environment
from shared.runner.layout import FleetLayout
from shared.runner.lifecycle import database_plans
from shared.runner.servers import Endpoints
from shared.runner.supervisor import Supervisor, SupervisorError, parse_program_environments, render_config

ENDPOINTS = Endpoints.from_environment()


def _environments(layout: FleetLayout, secrets_dir: Path) -> dict[str, dict[str, str]]:
    secrets = ensure_dev_secrets(secrets_dir, layout.specs)
    return {spec.name: service_environment(spec, layout, secrets, ENDPOINTS) for spec in layout.specs}


@pytest.mark.parametrize("layout", [FleetLayout.development(), FleetLayout.for_test_run("abc123")], ids=["dev", "test"])
def test_supervisord_config_has_one_program_per_service_with_its_port_and_env(
    layout: FleetLayout, tmp_path: Path
) -> None:
    layout = replace(layout, secrets_dir=tmp_path / "secrets")
    environments = _environments(layout, layout.secrets_dir)

    config = render_config(layout, environments)

    parsed = parse_program_environments(config)
    assert sorted(parsed) == sorted(spec.name for spec in FLEET)
    for spec in FLEET:
        port = spec.port + layout.port_offset
        assert f"--port {port} " in config
        assert f"{spec.app_path} --host 127.0.0.1 --port {port} --loop uvloop --http httptools" in config
        env = parsed[spec.name]
        assert env == environments[spec.name]
        assert env["PORT"] == str(port)
        assert env["SERVICE_NAME"] == spec.name
        assert env["SERVICE_CLIENT_ID"] == spec.name
        assert env["SERVICE_CLIENT_SECRET"].startswith("dev-")
        assert env["ENV"] == layout.env
        assert env["RABBITMQ_URL"].endswith(f"/{layout.vhost}")
        assert env["REDIS_URL"].endswith(f"/{layout.redis_db}")
        if spec.has_database:
            assert env["DATABASE_URL"].endswith(f"/{layout.database_name(spec)}")
            assert f"//{spec.database_role}:dev-" in env["DATABASE_URL"]
    assert config.count("stopsignal=TERM") == len(FLEET)
    assert "telegram-bot" not in parsed  # no token, no bot


def test_with_a_telegram_token_the_bot_runs_beside_the_fleet(tmp_path: Path) -> None:
    layout = replace(FleetLayout.development(), secrets_dir=tmp_path / "secrets")
    secrets = ensure_dev_secrets(layout.secrets_dir, layout.specs)
    assert bot_environment(layout, secrets, ENDPOINTS, {"TELEGRAM_BOT_TOKEN": "  "}) is None
    bot = bot_environment(
        layout, secrets, ENDPOINTS, {"TELEGRAM_BOT_TOKEN": "123:abc", "WEBHOOK_URL": "https://x.example"}
    )
    assert bot is not None
    environments = {**_environments(layout, layout.secrets_dir), "telegram-bot": bot}

    config = render_config(layout, environments)

    parsed = parse_program_environments(config)
    assert parsed["telegram-bot"] == bot
    assert "-m services.telegram_bot.main" in config
    assert bot["TELEGRAM_BOT_TOKEN"] == "123:abc" and bot["WEBHOOK_URL"] == "https://x.example"
    assert bot["GATEWAY_URL"] == "http://127.0.0.1:8000" and bot["PORT"] == "8009"
    assert bot["SERVICE_CLIENT_ID"] == "telegram-bot"
    assert bot["SERVICE_CLIENT_SECRET"] == secrets.client_secret("telegram-bot")
    # user-service accepts exactly that secret for the bot's client credentials
    user_service = environments["user-service"]["SERVICE_ACCOUNTS"]
    assert f"telegram-bot:{bot['SERVICE_CLIENT_SECRET']}" in user_service.split(",")
    assert "running" in bot_line(layout, environments)


def test_without_a_token_make_run_says_how_to_get_one(tmp_path: Path) -> None:
    layout = replace(FleetLayout.development(), secrets_dir=tmp_path / "secrets")
    line = bot_line(layout, _environments(layout, layout.secrets_dir))
    assert "not started" in line and "@BotFather" in line and "TELEGRAM_BOT_TOKEN" in line and "make sandbox" in line


def test_the_test_layout_shares_nothing_with_the_developers(tmp_path: Path) -> None:
    dev, test = FleetLayout.development(), FleetLayout.for_test_run("abc123")
    for spec in FLEET:
        assert test.port(spec) == dev.port(spec) + TEST_PORT_OFFSET
        assert test.database_name(spec).startswith("repitbot_test_")
        assert test.database_name(spec) != dev.database_name(spec)
    assert test.vhost == "repitbot_test_abc123" != dev.vhost
    assert (test.redis_db, dev.redis_db) == (15, 0)
    assert test.supervisor_socket != dev.supervisor_socket
    assert test.supervisor_pidfile != dev.supervisor_pidfile
    assert test.log_dir != dev.log_dir


def test_the_test_fleets_database_pools_are_smaller_so_a_run_fits_one_postgresql(tmp_path: Path) -> None:
    dev, test = (
        _environments(FleetLayout.development(), tmp_path),
        _environments(FleetLayout.for_test_run("a"), tmp_path),
    )
    for spec in FLEET:
        if spec.has_database:
            assert (test[spec.name]["DB_POOL_SIZE"], test[spec.name]["DB_MAX_OVERFLOW"]) == ("3", "4")
            assert "DB_POOL_SIZE" not in dev[spec.name]  # a developer's fleet keeps the services' default
        else:
            assert "DB_POOL_SIZE" not in test[spec.name]


def test_user_service_knows_every_service_and_the_bot_as_clients(tmp_path: Path) -> None:
    layout = FleetLayout.development()
    environments = _environments(layout, tmp_path)
    accounts = dict(entry.split(":", 1) for entry in environments["user-service"]["SERVICE_ACCOUNTS"].split(","))
    assert set(accounts) == {spec.name for spec in FLEET} | set(EXTRA_CLIENT_IDS)
    for spec in FLEET:  # each service presents the secret user-service expects from it
        assert accounts[spec.name] == environments[spec.name]["SERVICE_CLIENT_SECRET"]
    assert all(value.startswith("dev-") for value in accounts.values())


def test_every_service_knows_every_services_url(tmp_path: Path) -> None:
    layout = FleetLayout.for_test_run("abc123")
    for env in _environments(layout, tmp_path).values():
        for spec in FLEET:
            assert env[f"{spec.package.upper()}_URL"] == f"http://127.0.0.1:{spec.port + TEST_PORT_OFFSET}"


def test_developer_overrides_apply_fleet_wide_or_per_service(tmp_path: Path) -> None:
    layout = FleetLayout.development()
    secrets = ensure_dev_secrets(tmp_path, layout.specs)
    spec = FLEET[0]
    overrides = {"LOG_LEVEL": "DEBUG", f"{spec.env_prefix}ACCESS_TOKEN_TTL_SECONDS": "60", f"{spec.env_prefix}URL": "x"}
    env = service_environment(spec, layout, secrets, ENDPOINTS, overrides)
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["ACCESS_TOKEN_TTL_SECONDS"] == "60"
    assert "URL" not in env  # <PACKAGE>_URL is a service's address, not an override


def test_a_value_supervisord_would_alter_is_refused(tmp_path: Path) -> None:
    layout = replace(FleetLayout.development(), secrets_dir=tmp_path)
    environments = _environments(layout, tmp_path)
    environments[FLEET[0].name]["BOT_USERNAME"] = 'has"quote'
    with pytest.raises(SupervisorError, match="BOT_USERNAME"):
        render_config(layout, environments)


def test_secrets_are_generated_once_and_reused(tmp_path: Path) -> None:
    first = ensure_dev_secrets(tmp_path, FLEET)
    before = {path.name: path.read_text() for path in tmp_path.iterdir()}

    second = ensure_dev_secrets(tmp_path, FLEET)

    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == before
    assert second.service_accounts() == first.service_accounts()
    assert all(path.stat().st_mode & 0o077 == 0 for path in tmp_path.iterdir())  # private to the owner


def test_a_new_service_gets_its_secrets_without_touching_the_others(tmp_path: Path) -> None:
    ensure_dev_secrets(tmp_path, FLEET)
    before = {path.name: path.read_text() for path in tmp_path.iterdir()}
    newcomer = ServiceSpec("lesson-service", "lesson_service", 8002)

    secrets = ensure_dev_secrets(tmp_path, (*FLEET, newcomer))

    after = {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert {name: after[name] for name in before} == before
    assert secrets.client_secret("lesson-service").startswith("dev-")
    assert secrets.database_password(newcomer).startswith("dev-")


async def _role_can_connect(role: str, password: str, database: str) -> bool:
    try:
        conn = await asyncpg.connect(ENDPOINTS.database_url(database, role, password), timeout=5)
    except asyncpg.InsufficientPrivilegeError:
        return False
    await conn.close()
    return True


async def test_database_and_role_creation_is_idempotent_and_each_role_reaches_only_its_database(tmp_path: Path) -> None:
    prefix = f"repitbot_rt{uuid.uuid4().hex[:6]}"
    plans = [
        provision.DatabasePlan(f"{prefix}_one", f"{prefix}_one", "dev-one"),
        provision.DatabasePlan(f"{prefix}_two", f"{prefix}_two", "dev-two"),
    ]
    try:
        provision.ensure_databases(ENDPOINTS.pg_admin_dsn, plans)
        provision.ensure_databases(ENDPOINTS.pg_admin_dsn, plans)  # the second run changes nothing

        admin = await asyncpg.connect(ENDPOINTS.pg_admin_dsn)
        try:
            for plan in plans:
                owner = await admin.fetchval(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", plan.database
                )
                assert owner == plan.role
                public_acl = await admin.fetchval(
                    "SELECT count(*) FROM pg_database, aclexplode(datacl) a "
                    "WHERE datname = $1 AND a.grantee = 0 AND a.privilege_type = 'CONNECT'",
                    plan.database,
                )
                assert public_acl == 0
        finally:
            await admin.close()
        one, two = plans
        assert await _role_can_connect(one.role, one.password, one.database)
        assert not await _role_can_connect(one.role, one.password, two.database)
        assert not await _role_can_connect(two.role, two.password, one.database)
    finally:
        provision.drop_databases(ENDPOINTS.pg_admin_dsn, [p.database for p in plans], roles=[p.role for p in plans])


def test_database_plans_follow_the_layout(tmp_path: Path) -> None:
    secrets = ensure_dev_secrets(tmp_path, FLEET)
    plans = database_plans(FleetLayout.for_test_run("abc123"), secrets)
    assert [plan.database for plan in plans] == [
        f"repitbot_test_{s.package.removesuffix('_service')}" for s in FLEET if s.has_database
    ]
    assert [plan.role for plan in plans] == [s.database_role for s in FLEET if s.has_database]


def test_vhost_and_exchange_are_provisioned_idempotently() -> None:
    vhost = f"repitbot_rt_{uuid.uuid4().hex[:6]}"
    try:
        for _ in range(2):
            provision.ensure_vhost(vhost, ENDPOINTS.rabbit_user)
            provision.declare_events_exchange(ENDPOINTS.rabbit_url(vhost))
        assert provision.vhost_exists(vhost)
    finally:
        provision.delete_vhost(vhost)
    assert not provision.vhost_exists(vhost)
    provision.delete_vhost(vhost)  # deleting what is gone is fine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_an_installed_server_that_is_not_running_is_started_once() -> None:
    # A Redis of our own on a free port: the shared servers are never stopped or restarted by tests.
    port = _free_port()
    endpoints = replace(ENDPOINTS, redis_url=f"redis://127.0.0.1:{port}")
    said: list[str] = []
    try:
        servers.ensure_servers(endpoints, say=said.append)
        servers.ensure_servers(endpoints, say=said.append)  # running now: nothing to start
        assert redis.Redis(port=port).ping()
        assert [line for line in said if line.startswith("starting")] == [
            f"starting Redis: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port {port} --save  --appendonly no"
        ]
    finally:
        try:
            redis.Redis(port=port).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits


def test_a_missing_server_is_named_with_the_command_that_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = servers.LocalServer("FakeDB", "127.0.0.1", 1, "no-such-server-binary", ("x",), 1, lambda: False)
    monkeypatch.setattr(servers, "local_servers", lambda endpoints: (absent,))
    with pytest.raises(servers.ServerError, match=r"FakeDB not installed; install with: make deps"):
        servers.ensure_servers(ENDPOINTS)


def test_logs_follow_one_correlation_id_across_services_in_time_order(tmp_path: Path) -> None:
    a, b = ServiceSpec("a-service", "a_service", 8101), ServiceSpec("b-service", "b_service", 8102)
    layout = replace(FleetLayout.development(), state_dir=tmp_path, specs=(a, b))
    layout.log_dir.mkdir()
    layout.log_path(a).write_text(
        '{"ts": "2026-01-01T00:00:01", "service": "a-service", "correlation_id": "cid-1", "message": "first"}\n'
        "Traceback (most recent call last): not JSON\n"
        '{"ts": "2026-01-01T00:00:03", "service": "a-service", "correlation_id": "cid-1", "message": "third"}\n'
    )
    layout.log_path(b).write_text(
        '{"ts": "2026-01-01T00:00:02", "service": "b-service", "correlation_id": "cid-1", "message": "second"}\n'
        '{"ts": "2026-01-01T00:00:02", "service": "b-service", "correlation_id": "cid-2", "message": "other"}\n'
    )
    Path(f"{layout.log_path(b)}.1").write_text(
        '{"ts": "2026-01-01T00:00:00", "service": "b-service", "correlation_id": "cid-1", "message": "rotated"}\n'
    )

    lines = logs.lines_for_correlation_id(layout, "cid-1")

    assert [orjson.loads(line)["message"] for line in lines] == ["rotated", "first", "second", "third"]


# --- `up --monitoring`: Prometheus beside the fleet ------------------------------------------------


def _compose_jobs() -> dict[str, dict]:
    compose = yaml.safe_load(monitoring.COMPOSE_PROMETHEUS_CONFIG.read_text())
    return {job["job_name"]: job for job in compose["scrape_configs"]}


@pytest.mark.parametrize("include_bot", [False, True], ids=["no-bot", "bot"])
@pytest.mark.parametrize("layout", [FleetLayout.development(), FleetLayout.for_test_run("abc123")], ids=["dev", "test"])
def test_local_prometheus_scrapes_the_layouts_ports_under_the_compose_job_names(
    layout: FleetLayout, include_bot: bool
) -> None:
    config = monitoring.prometheus_config(layout, include_bot)

    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    expected = {spec.name: [f"127.0.0.1:{spec.port + layout.port_offset}"] for spec in FLEET}
    if include_bot:
        expected["telegram-bot"] = [f"127.0.0.1:{8009 + layout.port_offset}"]
    expected["prometheus"] = [f"127.0.0.1:{9090 + layout.port_offset}"]
    assert jobs == expected
    # the same names as compose's jobs (the alert rules key on `job`), and the same port per service
    compose = _compose_jobs()
    for name in jobs.keys() - {"prometheus"}:
        assert compose[name]["dns_sd_configs"][0]["port"] + layout.port_offset == int(jobs[name][0].split(":")[1])
    assert set(jobs) <= set(compose)
    assert config["rule_files"] == [str(path) for path in sorted(monitoring.RULES_DIR.glob("*.yml"))]
    assert config["rule_files"], "no alert rules to load"
    assert monitoring.prometheus_url(layout) == f"http://127.0.0.1:{9090 + layout.port_offset}"


def test_promtool_accepts_the_generated_config_and_its_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (make deps, or .ci/run)"
    path = tmp_path / "prometheus.yml"
    path.write_text(monitoring.render_prometheus_config(monitoring.prometheus_config(FleetLayout.development(), True)))

    result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    for rules in monitoring.rule_files():
        assert f"Checking {rules}" in result.stdout + result.stderr  # the rules are loaded, by absolute path


def test_with_monitoring_supervisord_also_runs_prometheus_with_the_generated_config(tmp_path: Path) -> None:
    layout = replace(FleetLayout.for_test_run("abc123"), state_dir=tmp_path, secrets_dir=tmp_path / "secrets")
    environments = _environments(layout, layout.secrets_dir)

    program = monitoring.supervisor_program(layout, include_bot=False)
    config = render_config(layout, environments, program)

    assert set(parse_program_environments(config)) == {spec.name for spec in FLEET} | {"prometheus"}
    assert program == {
        "prometheus": f"/usr/bin/prometheus --config.file={tmp_path}/prometheus.yml"
        f" --storage.tsdb.path={tmp_path}/prometheus --storage.tsdb.retention.time=7d"
        " --web.listen-address=127.0.0.1:19090"
    }
    assert f"command={program['prometheus']}\n" in config
    assert f"stdout_logfile={tmp_path}/log/prometheus.log" in config
    written = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert written == monitoring.prometheus_config(layout, include_bot=False)
    assert (tmp_path / "prometheus").is_dir()


def test_supervisord_runs_the_generated_prometheus_until_the_fleet_stops(tmp_path: Path) -> None:
    """The real program under a real supervisord: a layout with no services, so only Prometheus runs."""
    layout = replace(
        FleetLayout.for_test_run(f"mon{uuid.uuid4().hex[:6]}"), state_dir=tmp_path, specs=(), port_offset=21000
    )
    if not _port_is_free(monitoring.prometheus_port(layout)):
        pytest.skip(f"port {monitoring.prometheus_port(layout)} is taken")
    supervisor = Supervisor(layout)
    supervisor.write_config({}, monitoring.supervisor_program(layout, include_bot=False))
    supervisor.start()
    try:
        monitoring.wait_prometheus_ready(monitoring.prometheus_url(layout), timeout=30)
        assert supervisor.processes()["prometheus"]["pid"]  # supervisord's program
        loaded = httpx.get(f"{monitoring.prometheus_url(layout)}/api/v1/status/config", timeout=5).json()
        assert "job_name: prometheus" in loaded["data"]["yaml"]
        rules = httpx.get(f"{monitoring.prometheus_url(layout)}/api/v1/rules", timeout=5).json()
        alerts = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
        assert {"ServiceDown", "ServiceMissing", "GatewayHighErrorRate"} <= alerts  # deploy/prometheus/rules loaded
    finally:
        assert supervisor.stop()
    assert (tmp_path / "prometheus").is_dir()  # its storage, in the layout's state dir


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
