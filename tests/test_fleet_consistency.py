"""Adding a service is a folder plus one line in each table; this fails while any of them is missing.

The tables: ``shared/fleet.py`` (FLEET: the runner, the test fleet and migrations read it),
``docker-compose.microservices.yml`` (the service, its one-shot migration job, its database
and secrets) and, once it exists, the gateway's routing. Ports, health checks and the
settings a service cannot start without are compared between the code and compose.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import ServiceSettings
from shared.fleet import BOT_PACKAGE, FLEET, ServiceSpec
from shared.health import router as health_router
from shared.runner.compose_secrets import ComposeSecretNames
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
    (tmp_path / f"{database}_password").write_text("a-password\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRETS_DIR": str(tmp_path),
        "SERVICE_DATABASES": database,
        "PGHOST": endpoints.pg_host,
        "PGPORT": str(endpoints.pg_port),
    }
    try:
        for _ in range(2):
            result = subprocess.run(["bash", str(POSTGRES_INIT)], env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
    finally:
        drop_databases(endpoints.pg_admin_dsn, [database], roles=[database])


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
