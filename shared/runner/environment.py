"""The environment each service is started with: its settings (docs/CONTRACTS.md) as variables.

Every service learns every other service's URL as ``<PACKAGE>_URL`` (e.g.
``USER_SERVICE_URL``, which the settings read), so the gateway and
service-to-service calls find each other without a second table.

A developer may override settings (in ``.env`` or the shell) for the whole
fleet (``LOG_LEVEL``, ``BOT_USERNAME``, ``JWT_ISSUER``, ``JWT_AUDIENCE``) or for
one service with its prefix (``USER_SERVICE_LOG_LEVEL=DEBUG``). The test fleet
takes no overrides: it must be the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shared.fleet import ServiceSpec
from shared.runner.dev_secrets import DevSecrets
from shared.runner.layout import FleetLayout
from shared.runner.servers import Endpoints

FLEET_WIDE_OVERRIDES = ("LOG_LEVEL", "BOT_USERNAME", "JWT_ISSUER", "JWT_AUDIENCE")
_NOT_OVERRIDES = {"URL"}  # <PACKAGE>_URL names a service's address, not a setting of it


def _user_service_extras(secrets: DevSecrets) -> dict[str, str]:
    return {
        "SERVICE_ACCOUNTS": secrets.service_accounts(),
    }


# What one service needs beyond the common settings; a new service rarely adds a line here.
SERVICE_EXTRAS: dict[str, Callable[[DevSecrets], dict[str, str]]] = {
    "user-service": _user_service_extras,
}


def _material_service_extras(layout: FleetLayout) -> dict[str, str]:
    # files beside the fleet's other state: var/materials, or the test fleet's own folder
    return {
        "BLOB_DIR": str(layout.state_dir / "materials"),
        "MAX_REQUEST_BODY_BYTES": str(50 * 1024 * 1024 + 64 * 1024),  # a 50 MB file plus the form
    }


# What one service needs from the fleet's layout (its folders).
LAYOUT_EXTRAS: dict[str, Callable[[FleetLayout], dict[str, str]]] = {
    "material-service": _material_service_extras,
}


def service_environment(
    spec: ServiceSpec,
    layout: FleetLayout,
    secrets: DevSecrets,
    endpoints: Endpoints,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {
        "ENV": layout.env,
        "SERVICE_NAME": spec.name,
        "HOST": "127.0.0.1",
        "PORT": str(layout.port(spec)),
        "LOG_LEVEL": "INFO",
        "RABBITMQ_URL": endpoints.rabbit_url(layout.vhost),
        "REDIS_URL": endpoints.redis_database_url(layout.redis_db),
        "JWT_ISSUER": "repitbot-user-service",
        "JWT_AUDIENCE": "repitbot",
        "SERVICE_CLIENT_ID": spec.name,
        "SERVICE_CLIENT_SECRET": secrets.client_secret(spec.name),
        "PYTHONUNBUFFERED": "1",
    }
    for other in layout.specs:
        env[f"{other.package.upper()}_URL"] = layout.base_url(other)
    if spec.has_database:
        env["DATABASE_URL"] = database_url(spec, layout, secrets, endpoints)
        if layout.database_pool is not None:
            env["DB_POOL_SIZE"], env["DB_MAX_OVERFLOW"] = (str(n) for n in layout.database_pool)
    if spec.name in SERVICE_EXTRAS:
        env.update(SERVICE_EXTRAS[spec.name](secrets))
    if spec.name in LAYOUT_EXTRAS:
        env.update(LAYOUT_EXTRAS[spec.name](layout))
    if overrides:
        env.update(developer_overrides(spec, overrides))
    return env


def database_url(spec: ServiceSpec, layout: FleetLayout, secrets: DevSecrets, endpoints: Endpoints) -> str:
    """The service's own role on its own database."""
    return endpoints.database_url(layout.database_name(spec), spec.database_role, secrets.database_password(spec))


def developer_overrides(spec: ServiceSpec, environ: Mapping[str, str]) -> dict[str, str]:
    chosen = {name: environ[name] for name in FLEET_WIDE_OVERRIDES if environ.get(name)}
    for key, value in environ.items():
        if key.startswith(spec.env_prefix):
            name = key.removeprefix(spec.env_prefix)
            if name and name not in _NOT_OVERRIDES:
                chosen[name] = value
    return chosen


def bot_environment(
    layout: FleetLayout, secrets: DevSecrets, endpoints: Endpoints, overrides: Mapping[str, str] | None
) -> dict[str, str] | None:
    """The Telegram bot's variables, or None without a ``TELEGRAM_BOT_TOKEN`` (then it is not started).

    Only the developer's fleet runs it: the test fleet takes no overrides, and bot tests run the bot
    in-process against a fake Bot API server.
    """
    token = (overrides or {}).get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        return None
    gateway = next(spec for spec in layout.specs if spec.name == "api-gateway")
    env = {
        "ENV": layout.env,
        "SERVICE_NAME": "telegram-bot",
        "HOST": "127.0.0.1",
        "PORT": str(layout.bot_port),
        "LOG_LEVEL": "INFO",
        "TELEGRAM_BOT_TOKEN": token,
        "GATEWAY_URL": layout.base_url(gateway),
        "RABBITMQ_URL": endpoints.rabbit_url(layout.vhost),
        "REDIS_URL": endpoints.redis_database_url(layout.redis_db),
        "SERVICE_CLIENT_ID": "telegram-bot",
        "SERVICE_CLIENT_SECRET": secrets.client_secret("telegram-bot"),
        "OFFLINE_DB_PATH": str(layout.state_dir / "telegram-bot" / "offline.sqlite3"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "TELEGRAM_API_BASE_URL", "TELEGRAM_FILE_BASE_URL", "LOG_LEVEL"):
        if (overrides or {}).get(name):
            env[name] = overrides[name]  # type: ignore[index]
    return env
