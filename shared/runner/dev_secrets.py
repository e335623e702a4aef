"""Development secrets, generated once under ``var/dev-secrets/`` and reused on every start.

One file per secret (mode 0600), so a new service gets its own on the next
``make run`` without disturbing the others, and a value can be handed to a
service as ``<NAME>_FILE``. Every value starts with ``dev-``, which
``ENV=production`` refuses (:func:`shared.config.is_development_secret`).
user-service keeps its own development signing key in the same folder
(``jwt_private.pem``, created by the service on first start).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shared.config import DEV_SECRET_PREFIX
from shared.files import create_once
from shared.fleet import ServiceSpec

# Clients of user-service's client-credentials grant that are not fleet services.
EXTRA_CLIENT_IDS = ("telegram-bot",)


def new_dev_secret() -> str:
    # url-safe: no ':' or ',' that would break SERVICE_ACCOUNTS="id:secret,id:secret"
    return DEV_SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class DevSecrets:
    directory: Path
    client_ids: tuple[str, ...]

    def client_secret(self, client_id: str) -> str:
        return _read(self.directory / f"client-secret.{client_id}")

    def database_password(self, spec: ServiceSpec) -> str:
        return _read(self.directory / f"db-password.{spec.name}")

    def service_accounts(self) -> str:
        """user-service's ``SERVICE_ACCOUNTS``: every service and the bot, ``id:secret,...``."""
        return ",".join(f"{client_id}:{self.client_secret(client_id)}" for client_id in self.client_ids)


def ensure_dev_secrets(directory: Path, specs: Iterable[ServiceSpec]) -> DevSecrets:
    """Create whatever secret is missing; never replace one that exists."""
    specs = tuple(specs)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    client_ids = tuple(spec.name for spec in specs) + EXTRA_CLIENT_IDS
    for client_id in client_ids:
        create_once(directory / f"client-secret.{client_id}", new_dev_secret)
    for spec in specs:
        if spec.has_database:
            create_once(directory / f"db-password.{spec.name}", new_dev_secret)
    return DevSecrets(directory, client_ids)


def _read(path: Path) -> str:
    return path.read_text().strip()
