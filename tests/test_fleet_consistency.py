"""Adding a service is a folder plus one line in each table; this fails while any of them is missing.

The tables: ``shared/fleet.py`` (FLEET: the runner, the test fleet and migrations read it),
``docker-compose.microservices.yml`` (the service, its one-shot migration job, its database
and secrets) and, once it exists, the gateway's routing. Ports, health checks and the
settings a service cannot start without are compared between the code and compose; so are
the bot's entry, the monitoring services, the secrets generator and .env.example.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.telegram_bot.settings import BotSettings
from shared.config import ServiceSettings
from shared.fleet import BOT_PACKAGE, FLEET, ServiceSpec
from shared.health import router as health_router
from shared.runner.compose_secrets import MONITORING_ROLE, ComposeSecretNames, write_compose_secrets
from shared.runner.dev_secrets import ensure_dev_secrets
from shared.runner.environment import service_environment
from shared.runner.layout import REPO_ROOT, FleetLayout
from shared.runner.servers import Endpoints

COMPOSE_FILE = REPO_ROOT / "docker-compose.microservices.yml"
DOCKERFILE = "deploy/Dockerfile"
POSTGRES_INIT = REPO_ROOT / "deploy" / "postgres" / "init-databases.sh"
SERVICES_DIR = REPO_ROOT / "services"
GATEWAY_PACKAGE = "api_gateway"
HEALTH_PATHS = {route.path for route in health_router.routes}  # /health, /ready, /health/detailed

# What every deployed service is given, whatever its settings class says.
DEPLOYMENT_SETTINGS = {
    "ENV",
    "SERVICE_NAME",
    "PORT",
    "RABBITMQ_URL",
    "REDIS_URL",
    "USER_SERVICE_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "SERVICE_CLIENT_ID",
    "SERVICE_CLIENT_SECRET",
}

spec_params = pytest.mark.parametrize("spec", FLEET, ids=[spec.name for spec in FLEET])
database_spec_params = pytest.mark.parametrize(
    "spec", [s for s in FLEET if s.has_database], ids=[s.name for s in FLEET if s.has_database]
)


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"{COMPOSE_FILE.name} has no service {name!r}"
    return services[name]


def service_packages() -> list[str]:
    return sorted(path.parent.name for path in SERVICES_DIR.glob("*/main.py"))


def settings_class(spec: ServiceSpec) -> type[ServiceSettings]:
    """The service's ServiceSettings subclass, found by reading its package (nothing is started)."""
    package_dir = SERVICES_DIR / spec.package
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir)
        if relative.parts[0] in ("tests", "migrations"):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(base, ast.Name) and base.id == "ServiceSettings")
                or (isinstance(base, ast.Attribute) and base.attr == "ServiceSettings")
                for base in node.bases
            ):
                module = ".".join((spec.module, *relative.with_suffix("").parts))
                return getattr(importlib.import_module(module), node.name)
    raise AssertionError(f"{spec.name}: no ServiceSettings subclass in services/{spec.package}/")


def settings_needed(spec: ServiceSpec) -> set[str]:
    """Fields without a default, secrets (production refuses to start without them), and the deployment basics."""
    needed = set(DEPLOYMENT_SETTINGS)
    for name, field in settings_class(spec).model_fields.items():
        extra = field.json_schema_extra
        if field.is_required() or (isinstance(extra, dict) and extra.get("secret")):
            needed.add(name.upper())
    if not spec.has_database:
        needed.discard("DATABASE_URL")
    return needed


def provided_settings(environment: Mapping[str, Any]) -> set[str]:
    return {key.removesuffix("_FILE") for key in environment}


# --- the service folders and FLEET ---------------------------------------------------------------


def test_every_service_folder_has_a_fleet_entry() -> None:
    in_fleet = {spec.package for spec in FLEET} | {BOT_PACKAGE}
    missing = [package for package in service_packages() if package not in in_fleet]
    assert not missing, f"services without a line in shared/fleet.py FLEET: {missing}"


def test_every_fleet_entry_has_a_service_folder() -> None:
    missing = [spec.name for spec in FLEET if not (SERVICES_DIR / spec.package / "main.py").is_file()]
    assert not missing, f"FLEET names services with no services/<package>/main.py: {missing}"


def test_fleet_names_ports_and_databases_are_unique() -> None:
    for attribute in ("name", "package", "port", "database_name"):
        values = [getattr(spec, attribute) for spec in FLEET]
        assert len(values) == len(set(values)), f"duplicate {attribute} in FLEET: {values}"


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _dependencies(dependant: Any) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _runs_in_a_thread(call: Any) -> bool:
    # an instance (a security scheme, say) is called through its class's __call__
    called = call if inspect.isroutine(call) or inspect.isclass(call) else type(call).__call__
    return not (inspect.iscoroutinefunction(called) or inspect.isasyncgenfunction(called))


@spec_params
def test_no_route_depends_on_a_plain_function(spec: ServiceSpec) -> None:
    """FastAPI runs a plain ``def`` dependency in a worker thread: a thread hop and a GIL handoff on
    every request, for functions that only read ``app.state``. Dependencies are ``async def``."""
    app = importlib.import_module(f"{spec.module}.main").app
    threaded = sorted(
        f"{route.path}: {dependency.call.__module__}.{dependency.call.__qualname__}"
        for route in _routes(getattr(app, "routes", []))
        if hasattr(route, "dependant")
        for dependency in _dependencies(route.dependant)
        if dependency.call is not None and _runs_in_a_thread(dependency.call)
    )
    assert threaded == []


@spec_params
def test_settings_defaults_agree_with_fleet(spec: ServiceSpec) -> None:
    fields = settings_class(spec).model_fields
    assert fields["port"].default in (spec.port, ServiceSettings.model_fields["port"].default)
    assert fields["service_name"].default in (spec.name, ServiceSettings.model_fields["service_name"].default)


@spec_params
def test_the_local_runner_gives_every_needed_setting(spec: ServiceSpec, tmp_path: Path) -> None:
    layout = FleetLayout.development()
    env = service_environment(spec, layout, ensure_dev_secrets(tmp_path, FLEET), Endpoints())
    # outside production user-service makes its own development signing key, so secrets may stay unset
    needed = {name for name, field in settings_class(spec).model_fields.items() if field.is_required()}
    missing = (
        {n.upper() for n in needed} | DEPLOYMENT_SETTINGS | ({"DATABASE_URL"} if spec.has_database else set())
    ) - set(env)
    assert not missing, f"{spec.name}: the runner does not set {sorted(missing)}"
    assert env["PORT"] == str(spec.port)


# --- compose -------------------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@spec_params
def test_service_is_built_from_the_one_dockerfile(spec: ServiceSpec) -> None:
    build = compose_service(spec.name)["build"]
    assert build["context"] == "."
    assert build["dockerfile"] == DOCKERFILE
    assert build["args"]["SERVICE"] == spec.package
    assert str(build["args"]["PORT"]) == str(spec.port)


@database_spec_params
def test_service_waits_for_its_one_shot_migration_job(spec: ServiceSpec) -> None:
    job = compose_service(f"{spec.name}-migrate")
    service = compose_service(spec.name)
    assert job["command"] == ["python", "-m", "shared.migrations", "upgrade", spec.name]
    assert job["build"] == service["build"] and job["image"] == service["image"]
    assert job["restart"] == "no"
    assert job["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert provided_settings(job["environment"]) >= {"DATABASE_URL"}
    assert service["depends_on"][f"{spec.name}-migrate"]["condition"] == "service_completed_successfully"
    assert "migrations" not in " ".join(map(str, service.get("command", []))), "services never migrate themselves"


@spec_params
def test_service_port_and_health_check_match_the_code(spec: ServiceSpec) -> None:
    service = compose_service(spec.name)
    assert str(service["environment"]["PORT"]) == str(spec.port)
    probe = " ".join(service["healthcheck"]["test"])
    match = re.search(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/.-]*)", probe)
    assert match, f"{spec.name}: the health check calls no local URL: {probe}"
    assert int(match.group(1)) == spec.port
    assert match.group(2) in HEALTH_PATHS, f"{spec.name}: {match.group(2)} is not one of {sorted(HEALTH_PATHS)}"
    for mapping in service.get("ports", []):
        assert str(mapping).rsplit(":", 1)[-1] == str(spec.port), f"{spec.name}: published {mapping}"


@spec_params
def test_service_runs_like_production(spec: ServiceSpec) -> None:
    service = compose_service(spec.name)
    depends = service["depends_on"]
    for infrastructure in ("rabbitmq", "redis", *(("postgres",) if spec.has_database else ())):
        assert depends[infrastructure]["condition"] == "service_healthy", f"{spec.name} → {infrastructure}"
    assert service["restart"] in ("always", "unless-stopped", "on-failure")
    assert service["deploy"]["resources"]["limits"]["memory"]
    assert service["stop_signal"] == "SIGTERM"


@spec_params
def test_compose_provides_every_setting_the_service_needs(spec: ServiceSpec) -> None:
    service = compose_service(spec.name)
    environment = service["environment"]
    missing = settings_needed(spec) - provided_settings(environment)
    assert not missing, f"{spec.name}: compose does not set {sorted(missing)}"
    assert environment["SERVICE_NAME"] == spec.name
    assert environment["SERVICE_CLIENT_ID"] == spec.name
    mounted = set(service.get("secrets", []))
    for key, value in environment.items():
        if key.endswith("_FILE"):
            assert str(value).startswith("/run/secrets/"), f"{spec.name}: {key}={value}"
            assert str(value).removeprefix("/run/secrets/") in mounted, f"{spec.name}: {key} names an unmounted secret"


def test_postgres_creates_one_database_and_role_per_service() -> None:
    postgres = compose_service("postgres")
    databases = set(postgres["environment"]["SERVICE_DATABASES"].split())
    assert databases == {spec.database_name for spec in FLEET if spec.has_database}
    mounted = set(postgres["secrets"])
    for spec in FLEET:
        if spec.has_database:
            assert ComposeSecretNames.database_password(spec) in mounted
    assert any("init-databases.sh:/docker-entrypoint-initdb.d/" in volume for volume in postgres["volumes"])


def test_compose_secrets_are_the_files_the_generator_writes() -> None:
    declared = compose()["secrets"]
    assert set(declared) == ComposeSecretNames.all(FLEET)
    for name, source in declared.items():
        assert source["file"] == f"./secrets/{name}"


def test_the_dockerfile_is_one_pattern_for_every_service() -> None:
    text = (REPO_ROOT / DOCKERFILE).read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^ARG SERVICE$", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text and "/health" in text
    assert text.index("COPY requirements.lock") < text.index("RUN pip install") < text.index("COPY shared/")
    assert "COPY services/${SERVICE}/" in text
    assert re.search(r"^CMD .*uvicorn", text, re.M)


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql")
def test_the_postgres_init_script_is_idempotent(tmp_path: Path) -> None:
    from shared.runner.provision import drop_databases

    endpoints = Endpoints.from_environment()
    database = f"repitbot_ci{uuid.uuid4().hex[:6]}"
    monitor = f"repitbot_ci_monitor{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{database}_password").write_text("a-password\n")
    (tmp_path / "postgres_exporter_password").write_text("another-password\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRETS_DIR": str(tmp_path),
        "SERVICE_DATABASES": database,
        "MONITORING_ROLE": monitor,
        "PGHOST": endpoints.pg_host,
        "PGPORT": str(endpoints.pg_port),
    }

    def psql(user: str, dbname: str, sql: str) -> subprocess.CompletedProcess[str]:
        command = ["psql", "-XAtq", "-U", user, "-d", dbname, "-c", sql]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    try:
        for _ in range(2):
            result = subprocess.run(["bash", str(POSTGRES_INIT)], env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
        # the exporter's role reads the statistics and nothing else: no superuser, no service database
        attributes = psql(
            "postgres",
            "postgres",
            f"SELECT rolsuper, rolcanlogin, pg_has_role('{monitor}', 'pg_monitor', 'member')"
            f" FROM pg_roles WHERE rolname = '{monitor}'",
        )
        assert attributes.stdout.strip() == "f|t|t", attributes.stderr
        assert psql(monitor, "postgres", "SELECT count(*) > 0 FROM pg_stat_activity").stdout.strip() == "t"
        refused = psql(monitor, database, "SELECT 1")
        assert refused.returncode != 0 and "permission denied" in refused.stderr
    finally:
        drop_databases(endpoints.pg_admin_dsn, [database], roles=[database, monitor])


# --- the gateway (activates once services/api_gateway exists) -------------------------------------


def gateway_route_targets() -> set[str]:
    """Service names the gateway routes to.

    Contract for the gateway's author: ``services/api_gateway/routing.py`` exposes ``ROUTES``, a
    mapping of path prefix (``"lessons"``) to the target service's name (or its ServiceSpec).
    If the gateway is shaped otherwise, change only this function. The table names every
    service of the design, deployed or not (a route to one without instances answers 503),
    so a name need not be in FLEET yet.
    """
    routing = importlib.import_module(f"services.{GATEWAY_PACKAGE}.routing")
    targets = routing.ROUTES.values() if isinstance(routing.ROUTES, Mapping) else routing.ROUTES
    return {target if isinstance(target, str) else target.name for target in targets}


@pytest.mark.skipif(not (SERVICES_DIR / GATEWAY_PACKAGE).is_dir(), reason="no gateway yet (services/api_gateway)")
def test_the_gateway_routes_to_every_domain_service() -> None:
    domain_services = {spec.name for spec in FLEET if spec.package != GATEWAY_PACKAGE}
    missing = domain_services - gateway_route_targets()
    assert not missing, f"the gateway has no route to {sorted(missing)}"


# --- documentation -----------------------------------------------------------------------------


@spec_params
def test_every_setting_is_documented_in_env_example(spec: ServiceSpec) -> None:
    documented = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", (REPO_ROOT / ".env.example").read_text()))
    settings = {name.upper() for name in settings_class(spec).model_fields}
    missing = settings - documented
    assert not missing, f".env.example does not mention {sorted(missing)} ({spec.name})"


# --- the bot, the monitoring services, secrets and ports ------------------------------------------

BOT_SERVICE = "telegram-bot"
BOT_HEALTH_PATH = "/health"  # services/telegram_bot/health.py
# the port each non-Python service answers its health check on
MONITORING_PORTS = {
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "postgres-exporter": 9187,
    "redis-exporter": 9121,
}
# the only ports published on the host: what an operator opens (the compose file's header says why)
OPERATOR_PORTS = {
    "api-gateway": {8000},
    "grafana": {3000},
    "prometheus": {9090},
    "alertmanager": {9093},
    "rabbitmq": {15672},
}
# services whose data must outlive their container: each keeps it on a named volume
STATEFUL_SERVICES = (
    "postgres",
    "rabbitmq",
    "redis",
    "material-service",
    BOT_SERVICE,
    "prometheus",
    "alertmanager",
    "grafana",
)
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def long_running_services() -> list[str]:
    return [name for name, service in compose()["services"].items() if service.get("restart") != "no"]


def mounted_secrets(service: Mapping[str, Any]) -> set[str]:
    return {entry if isinstance(entry, str) else entry["source"] for entry in service.get("secrets", [])}


def bind_mounts(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every ./ bind mount (short syntax, as this file writes them)."""
    mounts = [str(volume).split(":") for volume in service.get("volumes", [])]
    return [(parts[0], parts[1]) for parts in mounts if parts[0].startswith("./")]


def named_volumes(service: Mapping[str, Any]) -> dict[str, str]:
    mounts = [str(volume).split(":") for volume in service.get("volumes", [])]
    return {parts[0]: parts[1] for parts in mounts if not parts[0].startswith(("./", "/"))}


def health_probe_url(service: Mapping[str, Any]) -> re.Match[str] | None:
    probe = " ".join(service["healthcheck"]["test"])
    return re.search(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/.-]*)", probe)


@pytest.fixture(scope="module")
def compose_secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("compose") / "secrets"
    write_compose_secrets(directory, FLEET)
    return directory


def test_the_bot_and_the_monitoring_services_are_deployed() -> None:
    services = compose()["services"]
    missing = {BOT_SERVICE, *MONITORING_PORTS, "rabbitmq"} - set(services)
    assert not missing, f"{COMPOSE_FILE.name} lacks {sorted(missing)}"
    for name, image in {
        "prometheus": "prom/prometheus:",
        "alertmanager": "prom/alertmanager:",
        "grafana": "grafana/grafana:",
        "postgres-exporter": "prometheuscommunity/postgres-exporter:",
        "redis-exporter": "oliver006/redis_exporter:",
    }.items():
        assert services[name]["image"].startswith(image), f"{name}: {services[name]['image']}"


@pytest.mark.parametrize("name", long_running_services())
def test_every_long_running_service_restarts_is_limited_and_checked(name: str) -> None:
    service = compose_service(name)
    assert service["restart"] in ("always", "unless-stopped", "on-failure")
    limits = service["deploy"]["resources"]["limits"]
    assert limits["memory"] and limits["cpus"], f"{name}: no memory or CPU limit"
    test = service["healthcheck"]["test"]
    assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no health check"
    for volume in named_volumes(service):
        assert volume in compose()["volumes"], f"{name}: volume {volume} is not declared"
    if name in STATEFUL_SERVICES:
        assert named_volumes(service), f"{name} keeps data but has no named volume"
    if name in MONITORING_PORTS:
        match = health_probe_url(service)
        assert match and int(match.group(1)) == MONITORING_PORTS[name], f"{name}: {test}"


def test_only_the_operators_ports_are_published() -> None:
    for name, service in compose()["services"].items():
        published = {int(str(mapping).rsplit(":", 1)[-1]) for mapping in service.get("ports", [])}
        assert published <= OPERATOR_PORTS.get(name, set()), f"{name} publishes {sorted(published)}"
    for name, ports in OPERATOR_PORTS.items():
        assert ports <= {int(str(m).rsplit(":", 1)[-1]) for m in compose_service(name).get("ports", [])}, name


def test_a_domain_service_can_be_scaled_and_the_gateway_finds_every_replica() -> None:
    """`--scale lesson-service=2`: no fixed host port or container name, and the gateway is given the
    compose name (services/api_gateway/discovery.py resolves every address of it each round)."""
    gateway_env = compose_service("api-gateway")["environment"]
    for spec in FLEET:
        if spec.package == GATEWAY_PACKAGE:
            continue
        service = compose_service(spec.name)
        assert "ports" not in service and "container_name" not in service, f"{spec.name} cannot be scaled"
        assert gateway_env[f"{spec.env_prefix}URLS"] == f"http://{spec.name}:{spec.port}"


def test_rabbitmq_runs_the_management_and_prometheus_plugins() -> None:
    rabbitmq = compose_service("rabbitmq")
    assert rabbitmq["image"].startswith("rabbitmq:3.") and rabbitmq["image"].endswith("-management")
    plugins = set(rabbitmq["environment"]["RABBITMQ_ENABLED_PLUGINS"].split(","))
    assert plugins >= {"rabbitmq_management", "rabbitmq_prometheus"}
    assert "15692" in [str(port) for port in rabbitmq["expose"]], "Prometheus scrapes rabbitmq:15692"


def test_the_bot_compose_entry_matches_bot_settings() -> None:
    bot = compose_service(BOT_SERVICE)
    environment = bot["environment"]
    fields = {name.upper() for name in BotSettings.model_fields}
    unknown = provided_settings(environment) - fields
    assert not unknown, f"{BOT_SERVICE}: compose sets {sorted(unknown)}, which BotSettings does not read"
    secrets_ = {
        name.upper()
        for name, field in BotSettings.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
    }
    missing = (secrets_ - {"DATABASE_URL"}) - provided_settings(environment)  # the bot owns no database
    assert not missing, f"{BOT_SERVICE}: compose does not give {sorted(missing)}"
    mounted = mounted_secrets(bot)
    for key, value in environment.items():
        if key.endswith("_FILE"):
            assert str(value).removeprefix("/run/secrets/") in mounted, f"{BOT_SERVICE}: {key} is not mounted"
    gateway = next(spec for spec in FLEET if spec.package == GATEWAY_PACKAGE)
    assert environment["GATEWAY_URL"] == f"http://{gateway.name}:{gateway.port}"
    assert environment["SERVICE_CLIENT_ID"] == BOT_SERVICE
    assert ComposeSecretNames.client_secret(BOT_SERVICE) in mounted
    port = BotSettings.model_fields["port"].default
    assert str(environment["PORT"]) == str(port) and environment["HOST"] == "0.0.0.0"  # scraped from outside
    match = health_probe_url(bot)
    assert match and (int(match.group(1)), match.group(2)) == (port, BOT_HEALTH_PATH)
    offline_db = str(environment["OFFLINE_DB_PATH"])
    assert any(offline_db.startswith(mount + "/") for mount in named_volumes(bot).values()), offline_db
    assert bot["build"]["dockerfile"] == DOCKERFILE and bot["build"]["args"]["SERVICE"] == BOT_PACKAGE
    assert "fonts-dejavu-core" in bot["build"]["args"]["APT_PACKAGES"].split()  # the charts' font
    assert bot["command"] == ["python", "-m", f"services.{BOT_PACKAGE}.main"]
    assert bot["depends_on"][gateway.name]["condition"] == "service_healthy"


def test_the_dockerfile_installs_a_services_debian_packages_as_root() -> None:
    text = (REPO_ROOT / DOCKERFILE).read_text()
    assert re.search(r"^ARG APT_PACKAGES", text, re.M)
    install = text.index("apt-get install")
    assert "${APT_PACKAGES}" in text[install : text.index("\n", install)]
    # after the shared dependency layer, before the image drops to its non-root user
    assert text.index("RUN pip install") < text.index("ARG APT_PACKAGES") < install < text.index("\nUSER ")


def test_every_secret_a_service_reads_is_mounted_declared_and_generated(compose_secrets_dir: Path) -> None:
    declared = set(compose()["secrets"])
    generated = {path.name for path in compose_secrets_dir.iterdir() if not path.name.startswith(".")}
    assert generated == declared, (
        f"declared, not generated: {sorted(declared - generated)}; the reverse: {sorted(generated - declared)}"
    )
    for name, service in compose()["services"].items():
        mounted = mounted_secrets(service)
        assert mounted <= declared, f"{name} mounts undeclared {sorted(mounted - declared)}"
        # what the service's compose entry and its mounted configuration files read from /run/secrets/
        texts = [yaml.safe_dump(service)]
        texts += [(REPO_ROOT / host).read_text() for host, _ in bind_mounts(service) if (REPO_ROOT / host).is_file()]
        read = {secret for text in texts for secret in re.findall(r"/run/secrets/(\w+)", text)}
        assert read <= mounted, f"{name} reads {sorted(read - mounted)} without mounting them"


def test_compose_secrets_are_made_once_and_keep_the_operators_token(compose_secrets_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    shutil.copytree(compose_secrets_dir, directory)
    assert (directory / "telegram_bot_token").read_bytes() == b"", "an empty placeholder for @BotFather's token"
    (directory / "telegram_bot_token").write_text("123456:operator-token\n")
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    write_compose_secrets(directory, FLEET)
    after = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert after == before
    password = (directory / "postgres_exporter_password").read_text().strip()
    assert (directory / "postgres_exporter_dsn").read_text().strip() == (
        f"postgresql://{MONITORING_ROLE}:{password}@postgres:5432/postgres?sslmode=disable"
    ), "the exporter's own pg_monitor role, not the superuser"
    assert len((directory / "grafana_admin_password").read_text().strip()) >= 32


def test_every_mounted_configuration_path_is_in_the_repository() -> None:
    for name, service in compose()["services"].items():
        for host, container in bind_mounts(service):
            assert (REPO_ROOT / host).exists(), f"{name} mounts {host} (at {container}), which is not in the repository"


def test_every_compose_variable_is_in_env_example() -> None:
    documented = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", (REPO_ROOT / ".env.example").read_text()))
    used = {match.group(1) for match in COMPOSE_VARIABLE.finditer(COMPOSE_FILE.read_text())}
    assert not used - documented, f".env.example does not mention {sorted(used - documented)}"
    settings = {name.upper() for name in BotSettings.model_fields}
    assert not settings - documented, f".env.example does not mention {sorted(settings - documented)} (the bot)"


def compose_settings_environment(service: Mapping[str, Any], secrets_dir: Path) -> dict[str, str]:
    """The service's environment as compose gives it: ${VAR:-default} at its default (.env.example's
    value), /run/secrets/<name> at the generated file."""
    environment = {}
    for key, value in service["environment"].items():
        text = COMPOSE_VARIABLE.sub(lambda match: match.group(2) or "", str(value))
        if key.endswith("_FILE") and text.startswith("/run/secrets/"):
            text = str(secrets_dir / text.removeprefix("/run/secrets/"))
        environment[key] = text
    return environment


@pytest.mark.parametrize("name", [spec.name for spec in FLEET] + [BOT_SERVICE])
def test_the_service_starts_in_production_from_its_compose_entry(
    name: str, compose_secrets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_dir = tmp_path / "secrets"
    shutil.copytree(compose_secrets_dir, secrets_dir)
    (secrets_dir / "telegram_bot_token").write_text("123456:operator-token\n")  # as the operator fills it
    settings_cls = BotSettings if name == BOT_SERVICE else settings_class(next(s for s in FLEET if s.name == name))
    for field in settings_cls.model_fields:  # only compose's values count, not this shell's
        monkeypatch.delenv(field.upper(), raising=False)
        monkeypatch.delenv(f"{field.upper()}_FILE", raising=False)
    for key, value in compose_settings_environment(compose_service(name), secrets_dir).items():
        monkeypatch.setenv(key, value)
    settings = settings_cls()
    assert settings.env == "production"
    assert settings.port == int(compose_service(name)["environment"]["PORT"])
