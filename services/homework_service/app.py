"""Assemble homework-service on the shared ``create_app`` (``main.py`` builds it from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from services.homework_service.api import homework
from services.homework_service.domain.overdue import start_scheduler, stop_scheduler
from services.homework_service.events import SUBSCRIPTIONS
from services.homework_service.settings import HomeworkServiceSettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus


def build_app(
    settings: HomeworkServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None
) -> FastAPI:
    return create_app(
        settings,
        routers=[homework.router],
        subscriptions=SUBSCRIPTIONS,
        on_startup=[start_scheduler],
        on_shutdown=[stop_scheduler],
        clock=clock,
        bus=bus,
    )
