"""The files behind ``docker-compose.microservices.yml``'s ``secrets:``, generated from FLEET.

``python -m shared.runner compose-secrets`` (run by ``deploy_final_microservices.sh``
when a file is missing) writes them under ``secrets/`` (gitignored). Passwords,
client secrets and the signing key are created once and never replaced; the
values built from them (database, broker and Redis URLs, SERVICE_ACCOUNTS, the
PostgreSQL exporter's DSN) are rewritten every time, so a new service is added to
them. Values are random and carry no ``dev-`` prefix: they are fit for
``ENV=production``. One file is left for the operator: ``telegram_bot_token`` is
created empty (a random value would be no token at all) and never touched again,
so the token from @BotFather put there stays.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from shared.auth.keys import new_private_key_pem
from shared.files import create_once
from shared.fleet import FLEET, ServiceSpec
from shared.runner.dev_secrets import EXTRA_CLIENT_IDS
from shared.runner.layout import REPO_ROOT

SECRETS_DIR = REPO_ROOT / "secrets"
# Compose bind-mounts a file secret with its host mode, and the services run as a non-root
# user: the files are world-readable, the folder (0700) keeps other host users out.
FILE_MODE = 0o644
RABBITMQ_USER = "repitbot"
RABBITMQ_VHOST = "repitbot"
# the metrics exporter's PostgreSQL role (deploy/postgres/init-databases.sh): pg_monitor, not the superuser
MONITORING_ROLE = "repitbot_monitor"


def _random() -> str:
    return secrets.token_urlsafe(32)


def _empty() -> bytes:
    return b""


def _rsa_private_key_pem() -> str:
    return new_private_key_pem(3072).decode()


def _file_name(client_or_package: str) -> str:
    return client_or_package.replace("-", "_")


class ComposeSecretNames:
    """The name of every compose secret; the consistency test compares them with the compose file."""

    @staticmethod
    def database_password(spec: ServiceSpec) -> str:
        return f"{spec.database_name}_password"  # read by deploy/postgres/init-databases.sh

    @staticmethod
    def database_url(spec: ServiceSpec) -> str:
        return f"{spec.package}_database_url"

    @staticmethod
    def client_secret(client_id: str) -> str:
        return f"{_file_name(client_id)}_client_secret"

    infrastructure = ("postgres_password", "rabbitmq_password", "rabbitmq_url", "redis_password", "redis_url")
    user_service = ("service_accounts", "jwt_private_key")
    notification_service = ("alertmanager_token",)  # Alertmanager's webhook bearer token
    operator_filled = ("telegram_bot_token",)  # created empty: the operator puts @BotFather's token in
    telegram_bot = ("telegram_bot_webhook_secret",)  # Telegram sends it with every webhook update
    monitoring = ("grafana_admin_password", "postgres_exporter_password")
    derived_monitoring = ("postgres_exporter_dsn",)  # the exporter's own role (pg_monitor), rebuilt from its password

    @classmethod
    def all(cls, specs: tuple[ServiceSpec, ...] = FLEET) -> set[str]:
        names = set(cls.infrastructure) | set(cls.user_service) | set(cls.notification_service)
        names |= set(cls.operator_filled) | set(cls.telegram_bot) | set(cls.monitoring) | set(cls.derived_monitoring)
        names |= {cls.client_secret(client_id) for client_id in (*(s.name for s in specs), *EXTRA_CLIENT_IDS)}
        names |= {cls.database_password(s) for s in specs if s.has_database}
        names |= {cls.database_url(s) for s in specs if s.has_database}
        return names


def write_compose_secrets(directory: Path = SECRETS_DIR, specs: tuple[ServiceSpec, ...] = FLEET) -> list[str]:
    """Create what is missing, refresh what is derived; returns the file names."""
    names = ComposeSecretNames
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)

    def read(name: str) -> str:
        return (directory / name).read_text().strip()

    def derive(name: str, value: str) -> None:
        path = directory / name
        path.write_text(value + "\n")
        path.chmod(FILE_MODE)

    for name in ("postgres_password", "rabbitmq_password", "redis_password"):
        create_once(directory / name, _random, FILE_MODE)
    create_once(directory / "jwt_private_key", _rsa_private_key_pem, FILE_MODE)
    for name in (*names.notification_service, *names.telegram_bot, *names.monitoring):
        create_once(directory / name, _random, FILE_MODE)
    for name in names.operator_filled:
        create_once(directory / name, _empty, FILE_MODE)
    client_ids = (*(spec.name for spec in specs), *EXTRA_CLIENT_IDS)
    for client_id in client_ids:
        create_once(directory / names.client_secret(client_id), _random, FILE_MODE)
    for spec in specs:
        if spec.has_database:
            create_once(directory / names.database_password(spec), _random, FILE_MODE)
            password = read(names.database_password(spec))
            derive(
                names.database_url(spec),
                f"postgresql://{spec.database_role}:{password}@postgres:5432/{spec.database_name}",
            )
    derive("rabbitmq_url", f"amqp://{RABBITMQ_USER}:{read('rabbitmq_password')}@rabbitmq:5672/{RABBITMQ_VHOST}")
    derive("redis_url", f"redis://:{read('redis_password')}@redis:6379/0")
    derive(
        "postgres_exporter_dsn",
        f"postgresql://{MONITORING_ROLE}:{read('postgres_exporter_password')}@postgres:5432/postgres?sslmode=disable",
    )
    derive(
        "service_accounts",
        ",".join(f"{client_id}:{read(names.client_secret(client_id))}" for client_id in client_ids),
    )
    return sorted(path.name for path in directory.iterdir() if not path.name.startswith("."))
