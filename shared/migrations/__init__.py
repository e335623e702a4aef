"""Alembic, once for the fleet: one env.py and template here, each service keeps only its versions.

``python -m shared.migrations upgrade user-service`` (``make migrate`` runs it for
every service) brings a service's database to head before its processes start;
no service migrates on start-up.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.fleet import ServiceSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"


def versions_dir(spec: ServiceSpec) -> Path:
    return REPO_ROOT / "services" / spec.package / "migrations" / "versions"


def alembic_config(spec: ServiceSpec, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(versions_dir(spec)))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["service"] = spec
    return config


def target_metadata(spec: ServiceSpec) -> list[MetaData]:
    import shared.tables  # noqa: F401  (registers the shared tables)
    from shared.db import SHARED_METADATA

    models = importlib.import_module(f"{spec.module}.models")
    return [models.Base.metadata, SHARED_METADATA]


def upgrade(spec: ServiceSpec, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(spec, database_url), revision)


def head_revisions(spec: ServiceSpec) -> set[str]:
    """The revisions a service's database must be at; none for a service without migrations."""
    if not versions_dir(spec).is_dir():
        return set()
    script = ScriptDirectory.from_config(alembic_config(spec, os.environ.get("DATABASE_URL", "postgresql://")))
    return set(script.get_heads())


def current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())
