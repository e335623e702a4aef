"""Assemble material-service on the shared ``create_app`` (``main.py`` builds it from the environment)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from services.material_service.api import materials
from services.material_service.domain.blobs import BlobStore
from services.material_service.settings import MaterialServiceSettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus

log = logging.getLogger(__name__)


def build_app(
    settings: MaterialServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None
) -> FastAPI:
    app = create_app(settings, routers=[materials.router], subscriptions={}, clock=clock, bus=bus)
    app.state.blobs = BlobStore(settings.blob_dir)
    return app
